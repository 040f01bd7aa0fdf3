"""End-to-end fixtures: the simulator on loopback and the real exporter process talking to it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from exporter.simulator import Simulator, SimulatorServer
from tests.support.fakes import SUB

REPO = Path(__file__).resolve().parents[2]


class ExporterProcess:
    """``python -m exporter`` as a child process; collects its stderr; knows its HTTP address.

    ``scheme="https"`` (with ``--web.config.file``) makes ``url`` https; ``verify``, ``auth`` and ``cert``
    are passed to every request ``get`` and ``post`` make (a call's own keyword arguments win).
    ``preexec_fn`` runs in the child before the exporter starts (e.g. to set resource limits).
    """

    def __init__(
        self,
        config: dict[str, Any],
        tmp_path: Path,
        server: SimulatorServer,
        *extra_args: str,
        scheme: str = "http",
        verify: str | bool | None = None,
        auth: tuple[str, str] | None = None,
        cert: tuple[str, str] | None = None,
        preexec_fn: Callable[[], None] | None = None,
    ) -> None:
        self.scheme = scheme
        self.request_options: dict[str, Any] = {
            key: value for key, value in (("verify", verify), ("auth", auth), ("cert", cert)) if value is not None
        }
        config_file = tmp_path / "config.yaml"
        config_file.write_text(yaml.safe_dump(config))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "IDENTITY_", "MSI_"))}
        env.update(IDENTITY_ENDPOINT=server.identity_endpoint, IDENTITY_HEADER=server.identity_header, PYTHONUNBUFFERED="1")
        self.config_file = config_file
        self.lines: list[str] = []
        self._started = threading.Event()
        self.url = ""
        self.process = subprocess.Popen(
            [sys.executable, "-m", "exporter", f"--config.file={config_file}", "--web.listen-address=127.0.0.1:0", "--log.level=debug", *extra_args],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=preexec_fn,
        )
        threading.Thread(target=self._read_stderr, daemon=True).start()
        if not self._started.wait(20):
            self.stop()
            raise AssertionError("exporter did not start:\n" + self.log_text())

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))
            match = re.search(r'msg="exporter started".* address=(\S+)', line)
            if match:
                self.url = f"{self.scheme}://{match.group(1)}"
                self._started.set()

    def log_text(self) -> str:
        return "\n".join(self.lines)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.get(self.url + path, **{"timeout": 5, **self.request_options, **kwargs})

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.post(self.url + path, **{"timeout": 10, **self.request_options, **kwargs})

    def metrics_text(self) -> str:
        response = self.get("/metrics")
        response.raise_for_status()
        return response.text

    def samples(self, name: str) -> list[tuple[dict[str, str], float]]:
        """Samples of one family, as (labels, value)."""
        return [
            (sample.labels, sample.value)
            for family in text_string_to_metric_families(self.metrics_text())
            for sample in family.samples
            if sample.name == name
        ]

    def value(self, name: str, **labels: str) -> float | None:
        matches = [value for sample_labels, value in self.samples(name) if all(sample_labels.get(k) == v for k, v in labels.items())]
        assert len(matches) <= 1, f"{name}{labels} matches {len(matches)} series"
        return matches[0] if matches else None

    def wait_for(self, condition: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}\n--- exporter log ---\n" + self.log_text()[-5000:])

    def stop(self, sig: int | None = None) -> int:
        if self.process.poll() is None:
            if sig is None:
                self.process.terminate()
            else:
                self.process.send_signal(sig)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode


def pool_config(server: SimulatorServer, *pools: tuple[str, str], interval: str = "1s", **polling: Any) -> dict[str, Any]:
    return {
        "azure": {"resource_manager_endpoint": server.url},
        "polling": {"interval": interval, "timeout": "2s", "stale_after": "1m", **polling},
        "pools": [{"subscription_id": SUB, "resource_group": rg, "name": name} for rg, name in pools],
    }


@pytest.fixture
def simulator() -> Iterator[tuple[Simulator, SimulatorServer]]:
    sim = Simulator(seed=7, page_size=5, lowercase_states=0.0)
    server = SimulatorServer(sim, host="127.0.0.1", port=0).start()
    try:
        yield sim, server
    finally:
        server.stop()


@pytest.fixture
def start_exporter(tmp_path: Path) -> Iterator[Callable[..., ExporterProcess]]:
    started: list[ExporterProcess] = []

    def start(config: dict[str, Any], server: SimulatorServer, *extra_args: str, **options: Any) -> ExporterProcess:
        """``options``: ExporterProcess's ``scheme``, ``verify``, ``auth``, ``cert``, ``preexec_fn``."""
        process = ExporterProcess(config, tmp_path, server, *extra_args, **options)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
