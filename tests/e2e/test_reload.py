"""Configuration reload against the real exporter process: SIGHUP and POST /-/reload (--web.enable-lifecycle)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
import requests
import yaml

from exporter.simulator import Simulator, SimulatorServer
from tests.e2e.conftest import REPO, SUB, ExporterProcess, pool_config

pytestmark = pytest.mark.e2e

RELOAD_OK = "azure_standby_pool_config_last_reload_successful"
RELOAD_TIME = "azure_standby_pool_config_last_reload_success_timestamp_seconds"


@pytest.fixture
def three_pools(simulator: tuple[Simulator, SimulatorServer]) -> SimulatorServer:
    sim, server = simulator
    for name in ("web", "batch", "extra"):
        sim.add_container_group_pool(SUB, "rg-one", name, max_ready_capacity=2, running=2)
    return server


def rewrite(exporter: ExporterProcess, config: dict[str, Any] | str) -> None:
    """Replace the exporter's configuration file (atomically, as config management tools do)."""
    staged = exporter.config_file.with_suffix(".staged")
    staged.write_text(config if isinstance(config, str) else yaml.safe_dump(config))
    os.replace(staged, exporter.config_file)


def up(exporter: ExporterProcess, pool: str) -> float | None:
    return exporter.value("azure_standby_pool_up", pool=pool)


def polls(exporter: ExporterProcess, pool: str) -> float:
    return exporter.value("azure_standby_pool_last_success_timestamp_seconds", pool=pool) or 0.0


def test_sighup_with_a_valid_config_adds_the_new_pool(three_pools: SimulatorServer, start_exporter) -> None:
    server = three_pools
    exporter = start_exporter(pool_config(server, ("rg-one", "web")), server)
    exporter.wait_for(lambda: up(exporter, "web") == 1, what="web up")
    assert exporter.value(RELOAD_OK) == 1
    started = exporter.value(RELOAD_TIME)
    assert up(exporter, "batch") is None

    rewrite(exporter, pool_config(server, ("rg-one", "web"), ("rg-one", "batch")))
    exporter.process.send_signal(signal.SIGHUP)
    exporter.wait_for(lambda: up(exporter, "batch") == 1, timeout=10, what="batch polled after the reload")
    assert up(exporter, "web") == 1
    assert exporter.value(RELOAD_OK) == 1 and exporter.value(RELOAD_TIME) > started
    assert any('msg="configuration reloaded"' in line for line in exporter.lines)


def test_invalid_config_keeps_the_old_pools_then_a_good_one_recovers(three_pools: SimulatorServer, start_exporter) -> None:
    server = three_pools
    exporter = start_exporter(pool_config(server, ("rg-one", "web")), server)
    exporter.wait_for(lambda: up(exporter, "web") == 1, what="web up")
    good_time = exporter.value(RELOAD_TIME)

    bad = pool_config(server, ("rg-one", "web"), ("rg-one", "batch"))
    bad["polling"]["interval"] = "soon"
    bad["pools"].append({"subscription_id": "nope", "resource_group": "rg-one", "name": "extra"})
    rewrite(exporter, bad)
    exporter.process.send_signal(signal.SIGHUP)
    exporter.wait_for(lambda: exporter.value(RELOAD_OK) == 0, timeout=5, what="the failed reload published")
    assert exporter.value(RELOAD_TIME) == good_time
    problems = [line for line in exporter.lines if 'msg="invalid configuration"' in line]
    assert len(problems) == 2 and all("level=error" in line for line in problems)
    assert any("polling.interval" in line for line in problems) and any("pools[2].subscription_id" in line for line in problems)
    before = polls(exporter, "web")
    exporter.wait_for(lambda: polls(exporter, "web") > before, timeout=5, what="web still polled")
    assert up(exporter, "batch") is None and up(exporter, "web") == 1

    rewrite(exporter, pool_config(server, ("rg-one", "web"), ("rg-one", "extra")))
    exporter.process.send_signal(signal.SIGHUP)
    exporter.wait_for(lambda: exporter.value(RELOAD_OK) == 1, timeout=5, what="the good reload published")
    assert exporter.value(RELOAD_TIME) > good_time
    exporter.wait_for(lambda: up(exporter, "extra") == 1, timeout=10, what="extra polled")
    assert "Traceback" not in exporter.log_text()


def test_post_reload_needs_the_lifecycle_flag(three_pools: SimulatorServer, start_exporter) -> None:
    server = three_pools
    exporter = start_exporter(pool_config(server, ("rg-one", "web")), server)
    refused = exporter.post("/-/reload")
    assert (refused.status_code, refused.text) == (403, "Lifecycle API is not enabled.\n")
    assert exporter.get("/-/reload").status_code == 405
    rewrite(exporter, pool_config(server, ("rg-one", "web"), ("rg-one", "batch")))
    assert exporter.post("/-/reload").status_code == 403
    assert not any('msg="reloading configuration"' in line for line in exporter.lines)


def test_post_reload_with_the_lifecycle_flag(three_pools: SimulatorServer, start_exporter) -> None:
    server = three_pools
    exporter = start_exporter(pool_config(server, ("rg-one", "web")), server, "--web.enable-lifecycle")
    exporter.wait_for(lambda: up(exporter, "web") == 1, what="web up")

    rewrite(exporter, "pools: []\npolling:\n  concurrency: 0\n")
    failed = exporter.post("/-/reload")
    assert failed.status_code == 500
    assert "polling.concurrency" in failed.text and "pools" in failed.text
    assert exporter.value(RELOAD_OK) == 0

    rewrite(exporter, pool_config(server, ("rg-one", "web"), ("rg-one", "batch")))
    reloaded = exporter.post("/-/reload", data=b"ignored body")
    assert (reloaded.status_code, reloaded.text) == (200, "configuration reloaded\n")
    assert exporter.value(RELOAD_OK) == 1
    exporter.wait_for(lambda: up(exporter, "batch") == 1, timeout=10, what="batch polled after the reload")


def test_reload_is_refused_in_demo_mode() -> None:
    """--demo has no configuration file: SIGHUP is logged and ignored, POST /-/reload answers 400."""
    process = subprocess.Popen(
        [sys.executable, "-m", "exporter", "--demo", "--web.listen-address=127.0.0.1:0", "--web.enable-lifecycle"],
        cwd=REPO, stderr=subprocess.PIPE, text=True,
    )
    lines: list[str] = []
    started = threading.Event()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if 'msg="exporter started"' in line:
                started.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert started.wait(20), "".join(lines)
        address = re.search(r" address=(\S+)", next(line for line in lines if "exporter started" in line)).group(1)  # type: ignore[union-attr]
        response = requests.post(f"http://{address}/-/reload", timeout=5)
        assert response.status_code == 400 and "--demo" in response.text
        process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any("SIGHUP ignored" in line for line in lines):
            time.sleep(0.1)
        assert any("SIGHUP ignored" in line and "level=warn" in line for line in lines), "".join(lines)
        assert process.poll() is None and requests.get(f"http://{address}/healthz", timeout=5).status_code == 200
    finally:
        process.terminate()
        assert process.wait(10) == 0
