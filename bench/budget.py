"""The client-side read budget and Retry-After pauses, checked in the simulator's request log.

The real exporter process (``python -m exporter``, configured with ``azure.max_reads_per_second`` and
``azure.max_read_burst``) polls a small world whose cold cycle needs several times the burst; ARM's own read bucket (250, refilled at 25/s) is on. A 429 with
``Retry-After`` is injected on a member read that happens after the burst is spent, when reads are
spaced by the budget, so every read still to come must wait out the pause. A second run uses a small
burst and high concurrency (20/s, burst 20, 16 workers, Retry-After 3): the readers queued during the
pause must go out at the budgeted rate afterwards, so the busiest 1 s window after the pause holds at
most rate + burst reads (an earlier bucket let 54 through).
"""

from __future__ import annotations

import bisect
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml

from exporter.simulator.world import RequestRecord

from .cycles import World, tally
from .memory import exporter_config
from .procs import ExporterProcess, SimulatorProcess, wait_until


@dataclass
class BudgetResult:
    world: World
    rate: float
    burst: int
    retry_after: int
    reads: int
    max_in_window: int
    window_start: float | None
    throttled_at: float | None
    requests_during_pause: int
    next_request_after: float | None
    wall: float
    pools_up: int
    statuses: dict[int, int]
    concurrency: int = 8
    max_after_pause: int | None = None  # most reads in a 1 s window that starts once Retry-After has passed

    @property
    def window_limit(self) -> int:
        return int(self.rate) + self.burst


def max_in_window(times: list[float], window: float = 1.0) -> tuple[int, float | None]:
    """Most events in any half-open window ``[t, t + window)``, and where that window starts."""
    ordered = sorted(times)
    best, start = 0, None
    for index, first in enumerate(ordered):
        count = bisect.bisect_left(ordered, first + window, lo=index) - index
        if count > best:
            best, start = count, first
    return best, start


def pause_check(records: list[RequestRecord], subscription_id: str, seconds: float) -> tuple[float | None, int, float | None]:
    """(time of the first 429, requests to the subscription that arrived within ``seconds`` after it, gap to the next one)."""
    arm = sorted((r for r in records if r.subscription_id == subscription_id), key=lambda r: r.time)
    throttled = next((r for r in arm if r.status == 429), None)
    if throttled is None:
        return None, 0, None
    later = [r.time - throttled.time for r in arm if r.time > throttled.time]
    return throttled.time, sum(1 for gap in later if gap < seconds), (min(later) if later else None)


def run_budget(world: World, *, rate: float = 10.0, burst: int = 50, retry_after: int = 5, concurrency: int = 8,
               fault_pool: int | None = None, timeout: float = 300.0, log: Any = print) -> BudgetResult:
    """The real exporter process's cold cycle under the budget, with one injected 429 (``Retry-After: retry_after``)."""
    layout = world.layout
    target = layout[fault_pool if fault_pool is not None else len(layout) * 3 // 4]
    log(f"[budget] exporter process: {world.pools} pools x {world.members} members, azure.max_reads_per_second {rate:g}, "
        f"max_read_burst {burst}, polling.concurrency {concurrency}; 429 Retry-After {retry_after}s on the first member read of {target.name}")
    with SimulatorProcess(pools=world.pools, members=world.members, resource_groups=world.resource_groups,
                          page_size=world.page_size, read_bucket=250) as sim, tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        config = exporter_config(sim.url, world, concurrency=concurrency, interval=3600.0)
        config["azure"].update(max_reads_per_second=rate, max_read_burst=burst)
        config_file = Path(tmp) / "config.yaml"
        config_file.write_text(yaml.safe_dump(config))
        sim.add_fault(match=f"/containergroups/{target.name}_", status=429, retry_after=retry_after, times=1)
        started = time.perf_counter()
        exporter = ExporterProcess(config_file, sim)
        try:
            with requests.Session() as session:
                def published() -> bool:
                    return "\nazure_standby_pool_poll_cycle_duration_seconds " in session.get(exporter.url + "/metrics", timeout=30).text

                if not wait_until(published, timeout, step=0.5):
                    raise RuntimeError(f"the exporter published no cycle within {timeout:g}s:\n" + "\n".join(exporter.lines[-10:]))
            wall = time.perf_counter() - started
            up = len(re.findall(r"^azure_standby_pool_up\{.*\} 1\.0$", session.get(exporter.url + "/metrics", timeout=30).text, re.M))
        finally:
            exporter.stop()
        records = [r for r in sim.requests() if r.operation != "token" and r.subscription_id is not None]
    best, start = max_in_window([r.time for r in records])
    throttled_at, during, gap = pause_check(records, target.subscription_id, retry_after)
    after_pause = None if throttled_at is None else max_in_window([r.time for r in records if r.time >= throttled_at + retry_after])[0]
    _, statuses, _ = tally(records)
    result = BudgetResult(world, rate, burst, retry_after, len(records), best, start, throttled_at, during, gap, wall,
                          up, dict(statuses), concurrency, after_pause)
    log(f"[budget] {len(records)} reads in {wall:.1f} s, at most {best} in one second ({after_pause} after the pause); after the 429: "
        f"{during} requests within {retry_after}s, next after {gap if gap is not None else float('nan'):.2f}s; statuses {dict(statuses)}; "
        f"{up} pools up")
    return result
