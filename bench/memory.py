"""Peak RSS of the real exporter process (``python -m exporter``) polling the benchmark world."""

from __future__ import annotations

import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml

from .cycles import World
from .procs import ExporterProcess, SimulatorProcess, proc_status

_RUNTIME_READS = re.compile(r'^azure_standby_pool_arm_requests_total\{[^}]*operation="runtime_view"[^}]*\} (\S+)$', re.M)
_CYCLE = re.compile(r"^azure_standby_pool_poll_cycle_duration_seconds (\S+)$", re.M)


@dataclass
class MemoryResult:
    world: World
    concurrency: int
    interval: float
    cycles: int
    seconds: float
    vm_hwm: int
    vm_rss: int
    cycle_durations: list[float] = field(default_factory=list)
    scrape_bytes: int = 0
    error: str | None = None


def exporter_config(url: str, world: World, *, concurrency: int, interval: float) -> dict[str, Any]:
    return {
        "azure": {"resource_manager_endpoint": url, "max_reads_per_second": 0},
        "polling": {"interval": f"{interval:g}s", "timeout": "30s", "concurrency": concurrency, "stale_after": f"{max(600.0, 2 * interval):g}s"},
        "pools": [{"subscription_id": p.subscription_id, "resource_group": p.resource_group, "name": p.name} for p in world.layout],
    }


def run_memory(world: World, *, concurrency: int, cycles: int = 3, interval: float = 10.0, timeout: float = 300.0,
               log: Any = print) -> MemoryResult:
    """Run the exporter until ``cycles`` cycles were published (or ``timeout``); sample VmHWM/VmRSS all along."""
    log(f"[memory] exporter process: {world.pools} pools x {world.members} members, concurrency {concurrency}, "
        f"interval {interval:g}s, until {cycles} cycles")
    with SimulatorProcess(pools=world.pools, members=world.members, resource_groups=world.resource_groups,
                          page_size=world.page_size) as sim, tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        config_file = Path(tmp) / "config.yaml"
        config_file.write_text(yaml.safe_dump(exporter_config(sim.url, world, concurrency=concurrency, interval=interval)))
        started = time.monotonic()
        exporter = ExporterProcess(config_file, sim)
        result = MemoryResult(world, concurrency, interval, 0, 0.0, 0, 0)
        session = requests.Session()
        try:
            deadline = started + timeout
            while time.monotonic() < deadline:
                status = proc_status(exporter.pid)
                if not status:
                    result.error = "the exporter exited: " + " | ".join(exporter.lines[-5:])
                    break
                result.vm_hwm, result.vm_rss = status.get("VmHWM", 0), status.get("VmRSS", 0)
                try:
                    text = session.get(exporter.url + "/metrics", timeout=30).text
                except requests.RequestException as exc:
                    result.error = f"scrape failed: {exc}"
                    break
                result.scrape_bytes = len(text)
                done = int(sum(float(value) for value in _RUNTIME_READS.findall(text)) // world.pools)
                duration = _CYCLE.search(text)
                if done > result.cycles and duration:
                    result.cycles = done
                    result.cycle_durations.append(float(duration.group(1)))
                    log(f"[memory] cycle {done} published ({float(duration.group(1)):.1f} s); VmHWM {result.vm_hwm / 2**20:.0f} MiB")
                if result.cycles >= cycles:
                    break
                time.sleep(1.0)
            else:
                result.error = f"only {result.cycles} cycles within {timeout:g}s"
            status = proc_status(exporter.pid)
            if status:
                result.vm_hwm, result.vm_rss = status.get("VmHWM", result.vm_hwm), status.get("VmRSS", result.vm_rss)
        finally:
            session.close()
            exporter.stop()
        result.seconds = time.monotonic() - started
    log(f"[memory] VmHWM {result.vm_hwm / 2**20:.1f} MiB, VmRSS {result.vm_rss / 2**20:.1f} MiB after {result.cycles} cycles"
        + (f" ({result.error})" if result.error else ""))
    return result
