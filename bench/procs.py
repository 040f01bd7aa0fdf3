"""Child processes the benchmark drives: the ARM simulator and the real exporter; /proc readings."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from exporter.simulator.world import RequestRecord

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class AccessToken:
    token: str
    expires_on: int


class SimulatorCredential:
    """A TokenCredential for the simulator's App Service style managed-identity endpoint (no azure-identity)."""

    def __init__(self, endpoint: str, header: str) -> None:
        self._endpoint = endpoint
        self._header = header

    def get_token(self, *scopes: str, claims: str | None = None) -> AccessToken:
        resource = scopes[0].removesuffix("/.default") if scopes else "https://management.azure.com"
        reply = requests.get(self._endpoint, params={"api-version": "2019-08-01", "resource": resource},
                             headers={"X-IDENTITY-HEADER": self._header}, timeout=10)
        reply.raise_for_status()
        body = reply.json()
        return AccessToken(body["access_token"], int(body["expires_on"]))


class SimulatorProcess:
    """``python -m exporter.simulator --world=bench ...`` on a loopback port; its admin API."""

    def __init__(self, *, pools: int, members: int, resource_groups: int, latency: float = 0.0,
                 page_size: int = 50, read_bucket: int | None = None, subscriptions: int = 1,
                 start_timeout: float = 120.0, kind: str = "container_group") -> None:
        args = [sys.executable, "-m", "exporter.simulator", "--world=bench", "--listen=127.0.0.1:0", "--tick=0",
                f"--pools={pools}", f"--members={members}", f"--resource-groups={resource_groups}",
                f"--subscriptions={subscriptions}", f"--latency={latency}", f"--page-size={page_size}",
                f"--read-bucket={'none' if read_bucket is None else read_bucket}", f"--kind={kind}"]
        self.process = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.values: dict[str, str] = {}
        ready = threading.Event()

        def read() -> None:
            assert self.process.stdout is not None
            for line in self.process.stdout:
                name, sep, value = line.strip().partition("=")
                if sep:
                    self.values[name] = value
                if len(self.values) >= 3:
                    ready.set()
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(start_timeout) or len(self.values) < 3:
            self.stop()
            raise RuntimeError("the simulator did not start: " + (self.process.stderr.read() if self.process.stderr else ""))
        self.url = self.values["ARM_ENDPOINT"]
        self.identity_endpoint = self.values["IDENTITY_ENDPOINT"]
        self.identity_header = self.values["IDENTITY_HEADER"]
        self._admin = requests.Session()

    def credential(self) -> SimulatorCredential:
        return SimulatorCredential(self.identity_endpoint, self.identity_header)

    def _post(self, action: str, data: dict[str, Any] | None = None) -> None:
        reply = self._admin.post(f"{self.url}/_simulator/{action}", json=data or {}, timeout=60)
        reply.raise_for_status()

    def reset_requests(self) -> None:
        self._post("reset_requests")

    def add_fault(self, **fault: Any) -> None:
        self._post("faults", fault)

    def clear_faults(self) -> None:
        self._admin.delete(f"{self.url}/_simulator/faults", timeout=60).raise_for_status()

    def requests(self) -> list[RequestRecord]:
        """The simulator's request log (token requests included: filter on ``operation``)."""
        reply = self._admin.get(f"{self.url}/_simulator/requests", timeout=120)
        reply.raise_for_status()
        return [RequestRecord(**record) for record in reply.json()]

    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        terminate(self.process)
        if hasattr(self, "_admin"):
            self._admin.close()

    def __enter__(self) -> SimulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def proc_status(pid: int) -> dict[str, int]:
    """VmHWM, VmRSS, ... of a process from /proc/PID/status, in bytes (empty once it is gone)."""
    values: dict[str, int] = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return values
    for line in text.splitlines():
        match = re.match(r"^(Vm\w+):\s+(\d+) kB", line)
        if match:
            values[match.group(1)] = int(match.group(2)) * 1024
    return values


class ExporterProcess:
    """The real exporter: ``python -m exporter --config.file=... --web.listen-address=127.0.0.1:0``."""

    def __init__(self, config_file: Path, simulator: SimulatorProcess, start_timeout: float = 60.0) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "IDENTITY_", "MSI_"))}
        env.update(IDENTITY_ENDPOINT=simulator.identity_endpoint, IDENTITY_HEADER=simulator.identity_header, PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "exporter", f"--config.file={config_file}", "--web.listen-address=127.0.0.1:0", "--log.level=info"],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        self.lines: list[str] = []
        self.url = ""
        started = threading.Event()

        def read() -> None:
            assert self.process.stderr is not None
            for line in self.process.stderr:
                if len(self.lines) < 2000:
                    self.lines.append(line.rstrip("\n"))
                match = re.search(r'msg="exporter started".* address=(\S+)', line)
                if match:
                    self.url = f"http://{match.group(1)}"
                    started.set()
            started.set()

        threading.Thread(target=read, daemon=True).start()
        if not started.wait(start_timeout) or not self.url:
            self.stop()
            raise RuntimeError("the exporter did not start:\n" + "\n".join(self.lines[-20:]))

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        terminate(self.process)


def terminate(process: subprocess.Popen[Any]) -> None:
    """SIGTERM, then SIGKILL if it has not exited within 10 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def wait_until(condition: Any, timeout: float, step: float = 0.2) -> bool:
    """Poll ``condition()`` until true or ``timeout`` seconds passed (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return bool(condition())
