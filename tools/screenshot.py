#!/usr/bin/env python3
"""Writes docs/status-page.png: the status page of the demo world, as headless chromium shows it (`make screenshot`).

    .venv/bin/python tools/screenshot.py docs/status-page.png

Starts the simulator's demo world (the one `--demo` serves) on loopback, depletes one pool, drains
another below half and fails one read (403) so the picture shows each condition and a failed part,
runs the real exporter against it, waits for a few poll cycles and captures the page at desktop width.
Needs Debian's chromium and chromium-driver.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from exporter.simulator import Fault, Simulator, SimulatorServer  # noqa: E402
from exporter.simulator.demo_world import DEMO_RESOURCE_GROUPS, DEMO_SUBSCRIPTION  # noqa: E402
from tests.support.browser import full_page_png, start_chromium  # noqa: E402

WIDTH = 1100
CYCLES = 4  # poll cycles to wait: creations finish, the depleted pool shows as such


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path)
    args = parser.parse_args()
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or chromedriver is None:
        print("chromium and chromedriver are needed: apt-get install chromium chromium-driver", file=sys.stderr)
        return 2
    simulator = Simulator.demo()
    simulator.claim_probability = 0.0  # no random claims: the same picture every time
    batch = DEMO_RESOURCE_GROUPS[1]
    simulator.deplete(DEMO_SUBSCRIPTION, batch, "batch-pool")
    simulator.set_refill(DEMO_SUBSCRIPTION, batch, "vm-pool-hot", False)
    simulator.claim(DEMO_SUBSCRIPTION, batch, "vm-pool-hot", 2)
    simulator.faults.add(Fault(match="/standbyvirtualmachinepools/vm-pool-deallocated/standbyvirtualmachines", status=403))
    server = SimulatorServer(simulator, host="127.0.0.1", port=0, tick_interval=1.0).start()
    with tempfile.TemporaryDirectory() as scratch:
        config = Path(scratch, "config.yaml")
        config.write_text(yaml.safe_dump({
            # the api-version the demo reads (dynamicSizing of jobs-pool appears from 2025-10-01 on)
            "azure": {"resource_manager_endpoint": server.url, "api_versions": {"standby_pool": "2025-10-01"}},
            "polling": {"interval": "2s", "timeout": "5s", "stale_after": "1m"},
            "discovery": {"subscriptions": [DEMO_SUBSCRIPTION]},
        }))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "IDENTITY_", "MSI_"))}
        env.update(IDENTITY_ENDPOINT=server.identity_endpoint, IDENTITY_HEADER=server.identity_header)
        exporter = subprocess.Popen([sys.executable, "-m", "exporter", f"--config.file={config}", "--web.listen-address=127.0.0.1:0"],
                                    cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
        try:
            url = _started_url(exporter)
            _wait_for_cycles(url, CYCLES)
            driver = start_chromium(chromium, chromedriver, Path(scratch, "profile"), width=WIDTH)
            try:
                driver.get(url + "/")
                png = full_page_png(driver, WIDTH)
            finally:
                driver.quit()
        finally:
            exporter.terminate()
            exporter.wait(10)
            server.stop()
    args.output.write_bytes(png)
    print(f"wrote {args.output} ({len(png)} bytes)")
    return 0


def _started_url(process: subprocess.Popen[str]) -> str:
    assert process.stderr is not None
    found: list[str] = []
    done = threading.Event()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            match = re.search(r'msg="exporter started".* address=(\S+)', line)
            if match and not found:
                found.append(f"http://{match.group(1)}")
                done.set()
        done.set()

    threading.Thread(target=read, daemon=True).start()
    if not done.wait(30) or not found:
        raise SystemExit("the exporter did not start")
    return found[0]


def _wait_for_cycles(url: str, cycles: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if requests.get(url + "/status.json", timeout=5).json()["poll_cycles"] >= cycles:
            return
        time.sleep(0.5)
    raise SystemExit("the exporter did not complete its poll cycles")


if __name__ == "__main__":
    sys.exit(main())
