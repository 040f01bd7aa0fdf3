"""Scrape latency of the real exporter while ARM fails: the figure the fault tests used to assert.

The exporter polls a small world every second while the simulator answers every member read with a 500,
every runtime view after a 0.3 s delay and the container group lists with a 429 now and then; a client
keeps one HTTP/1.1 connection open and times ``samples`` scrapes of ``/metrics``, as Prometheus does.
A scrape only sends bytes rendered once per cycle, so it should not notice the faults at all.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml

from .cycles import World
from .procs import ExporterProcess, SimulatorProcess
from .scrape import percentile

FAULTS: tuple[dict[str, Any], ...] = (
    {"match": "/providers/microsoft.containerinstance/containergroups/", "status": 500},
    {"match": "/runtimeviews/latest", "delay": 0.3},
    {"match": "/providers/microsoft.containerinstance/containergroups$", "status": 429, "retry_after": 1, "times": 5},
)


@dataclass
class FaultScrapeResult:
    world: World
    samples: int
    latencies: list[float] = field(default_factory=list)
    error: str | None = None

    def quantile(self, q: float) -> float:
        return percentile(self.latencies, q) if self.latencies else float("nan")


def run_fault_scrapes(world: World, *, samples: int = 200, warmup_cycles: float = 3.0, log: Any = print) -> FaultScrapeResult:
    log(f"[faults] exporter process: {world.pools} pools x {world.members} members, interval 1 s, ARM failing; {samples} scrapes")
    result = FaultScrapeResult(world, samples)
    with SimulatorProcess(pools=world.pools, members=world.members, resource_groups=world.resource_groups,
                          page_size=world.page_size) as sim, tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        config = {
            "azure": {"resource_manager_endpoint": sim.url, "max_reads_per_second": 0},
            "polling": {"interval": "1s", "timeout": "5s", "stale_after": "60s"},
            "pools": [{"subscription_id": p.subscription_id, "resource_group": p.resource_group, "name": p.name} for p in world.layout],
        }
        config_file = Path(tmp) / "config.yaml"
        config_file.write_text(yaml.safe_dump(config))
        exporter = ExporterProcess(config_file, sim)
        session = requests.Session()
        try:
            for fault in FAULTS:
                sim.add_fault(**fault)
            time.sleep(warmup_cycles)  # a few cycles under the faults first
            while len(result.latencies) < samples:
                started = time.perf_counter()
                reply = session.get(exporter.url + "/metrics", timeout=10)
                result.latencies.append(time.perf_counter() - started)
                if reply.status_code != 200:
                    result.error = f"/metrics answered {reply.status_code}"
                    break
                time.sleep(0.03)
        except requests.RequestException as exc:
            result.error = f"scrape failed: {exc}"
        finally:
            session.close()
            exporter.stop()
    log(f"[faults] p50 {result.quantile(0.5) * 1000:.1f} ms, p99 {result.quantile(0.99) * 1000:.1f} ms"
        + (f" ({result.error})" if result.error else ""))
    return result
