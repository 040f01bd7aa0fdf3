"""Soak (issue 6): thousands of accelerated poll cycles while pools and members come and go.

The poller runs in-process against the simulator over real HTTP, on a fake clock that advances one
interval per cycle, so member and pool refresh caches, staleness, token expiry (the simulator's tokens
live one simulated hour) and discovery all turn over many times in a couple of minutes.

Phases: warm-up (static pools only), churn (members claimed and refilled, pools created, deleted and
discovered), settle (churn stops, every churned pool is gone). After settling, the series count and the
poller's caches must be back at their warm-up values, and the process must not have grown.
"""

from __future__ import annotations

import gc
import random
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from exporter.arm import ArmClient, ReadBudget, RetryPolicy
from exporter.armstats import ArmStats
from exporter.config import load_settings
from exporter.exposition import render
from exporter.poller import Poller
from exporter.snapshot import Snapshot
from exporter.simulator import Simulator, SimulatorServer
from tests.support.fakes import SUB, FakeClock, SimulatorCredential

pytestmark = [pytest.mark.soak, pytest.mark.slow]

RG = "rg-soak"
VM_RG = "rg-soak-vm"
CYCLES = 5000
WARM_UP = 500  # baseline taken here
SETTLE_FROM = 4500  # churn stops; every churned pool is deleted
DISCOVER_EVERY = 10
NEW_POOL_EVERY = 60
POOL_LIFETIME = 150
STATIC = {"alpha": 4, "beta": 3}
EPOCH = 1_764_000_000.0


def rss_bytes() -> int:
    match = re.search(r"^VmRSS:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    assert match
    return int(match.group(1)) * 1024


def series(snapshot: Snapshot) -> int:
    """Sample lines of the rendered snapshot, without the ARM request counter: a new status code (a 404 for a
    member handed out between list and read, a 401 at token expiry) adds a series that rightly stays."""
    text = render(snapshot).text.decode()
    return sum(1 for line in text.splitlines() if line and not line.startswith("#") and not line.startswith("azure_standby_pool_arm_requests_total"))


@pytest.fixture
def world() -> Iterator[tuple[Simulator, SimulatorServer, FakeClock]]:
    clock = FakeClock(0.0)
    sim = Simulator(seed=11, page_size=500, latency=0.0, read_bucket=None, create_seconds=(2.0, 4.0), clock=clock,
                    deleting_seconds=1.0, lowercase_states=0.02, request_log_limit=200)
    server = SimulatorServer(sim, host="127.0.0.1", port=0).start()
    yield sim, server, clock
    server.stop()


def test_soak_churn_returns_to_baseline(world: tuple[Simulator, SimulatorServer, FakeClock]) -> None:
    sim, server, clock = world
    rng = random.Random(5)
    for name, capacity in STATIC.items():
        sim.add_container_group_pool(SUB, RG, name, max_ready_capacity=capacity)
    sim.add_virtual_machine_pool(SUB, VM_RG, "vmpool", max_ready_capacity=2)
    sim.add_container_group(SUB, RG, "alpha-frontend")  # a neighbour that is no pool's member

    settings = load_settings({
        "azure": {"resource_manager_endpoint": server.url, "max_reads_per_second": 0},
        "polling": {"interval": 1, "timeout": 5, "stale_after": 20, "member_refresh": 7, "pool_refresh": 13, "concurrency": 4},
        "discovery": {"subscriptions": [SUB], "interval": 600},
    })
    stats = ArmStats()
    credential = SimulatorCredential(sim)
    client = ArmClient(server.url, credential, "https://management.azure.com/.default", timeout=5, observer=stats,
                       budget=ReadBudget(0, 1), retry=RetryPolicy(attempts=2, backoff_base=0.001, backoff_max=0.002))
    poller = Poller(settings, client, stats, wall_clock=lambda: EPOCH + clock.now, monotonic=clock)

    churned: dict[str, int] = {}  # live churned pool -> cycle it was created
    created = 0
    claims = 0
    threads_at_baseline = 0
    baseline: dict[str, int] = {}
    checkpoints: list[tuple[int, int, float]] = []  # (cycle, RSS, seconds since start)
    started = time.monotonic()
    try:
        for cycle in range(CYCLES):
            clock.now += 1.0
            churning = WARM_UP <= cycle < SETTLE_FROM
            if churning:
                if cycle % NEW_POOL_EVERY == 0:
                    name = f"churn{created}"
                    created += 1
                    sim.add_container_group_pool(SUB, RG, name, max_ready_capacity=rng.randint(1, 3), running=0,
                                                 creating=rng.randint(0, 2))
                    churned[name] = cycle
                for name, born in list(churned.items()):
                    if cycle - born >= POOL_LIFETIME:
                        sim.delete_pool(SUB, RG, name)
                        del churned[name]
                if rng.random() < 0.4:
                    pool = rng.choice([*STATIC, *churned, "vmpool"])
                    claims += len(sim.claim(SUB, VM_RG if pool == "vmpool" else RG, pool, rng.randint(1, 2)))
            elif cycle == SETTLE_FROM:
                for name in list(churned):
                    sim.delete_pool(SUB, RG, name)
                churned.clear()
            sim.tick()
            if cycle % DISCOVER_EVERY == 0:
                poller.discover_once()
            snapshot = poller.poll_once()

            if cycle == WARM_UP - 1:
                gc.collect()
                baseline = {"series": series(snapshot), "pools": len(snapshot.pools),
                            "member_cache": len(poller._member_cache), "pool_cache": len(poller._pool_cache)}
                threads_at_baseline = threading.active_count()
                assert all(status.up for status in snapshot.pools), [s.last_error for s in snapshot.pools if not s.up]
                assert baseline["pools"] == len(STATIC) + 1 and baseline["member_cache"] == sum(STATIC.values()) + 2
            if cycle in (WARM_UP - 1, 1000, 2000, 3000, 4000, SETTLE_FROM - 1, CYCLES - 1):
                gc.collect()
                checkpoints.append((cycle, rss_bytes(), time.monotonic() - started))
            if churning and cycle % 500 == 0:  # caches follow the estate while it churns
                listed = len(poller.pools())
                assert len(poller._pool_cache) <= listed
                assert len(poller._member_cache) <= 3 * listed + sum(STATIC.values())
    finally:
        poller.stop()
        client.close()

    elapsed = time.monotonic() - started
    final = {"series": series(snapshot), "pools": len(snapshot.pools),
             "member_cache": len(poller._member_cache), "pool_cache": len(poller._pool_cache)}
    report = f"{CYCLES} cycles in {elapsed:.0f}s, {created} pools created, {claims} members claimed, " \
             f"{credential.issued} tokens; RSS " + ", ".join(f"@{c}: {r / 2**20:.1f} MiB ({t:.0f}s)" for c, r, t in checkpoints)
    print(report)
    assert created >= 50 and claims >= 1000, report
    assert all(status.up for status in snapshot.pools), [s.last_error for s in snapshot.pools if not s.up]
    assert credential.issued >= 2  # the simulated hour passed: the token expired and was replaced
    assert final == baseline, f"{final} != {baseline}; {report}"
    assert threading.active_count() <= threads_at_baseline + 1
    rss_base, rss_end = checkpoints[0][1], checkpoints[-1][1]
    assert rss_end < rss_base * 1.10, f"RSS grew {100 * (rss_end / rss_base - 1):.1f}% after warm-up; {report}"
