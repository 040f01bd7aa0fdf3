"""Poll cycles of the exporter's own Poller + ArmClient against a simulator subprocess.

The poller runs in this process exactly as ``exporter.cli`` wires it (same ArmClient pool size), with
the read budget passed explicitly; every ARM read is counted from the simulator's request log.
"""

from __future__ import annotations

import math
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from exporter.arm import ArmClient, ReadBudget
from exporter.armstats import ArmStats
from exporter.exposition import render
from exporter.config import Settings, load_settings
from exporter.poller import Poller
from exporter.resources import container_groups_path, pool_path
from exporter.snapshot import Snapshot
from exporter.simulator.bench_world import BenchPool, bench_layout
from exporter.simulator.world import RequestRecord

from .procs import SimulatorProcess

ARM_OPERATIONS = ("runtime_view", "pool_list", "container_group_list", "container_group")


@dataclass(frozen=True)
class World:
    pools: int
    members: int
    resource_groups: int
    page_size: int = 50
    subscriptions: int = 1

    @property
    def layout(self) -> list[BenchPool]:
        return bench_layout(self.pools, self.resource_groups, self.subscriptions)

    def list_pages(self) -> int:
        """Container group list pages per cycle: per resource group ceil(container groups / page size), at least 1."""
        per_group = Counter((pool.subscription_id, pool.resource_group) for pool in self.layout)
        return sum(max(1, math.ceil(count * self.members / self.page_size)) for count in per_group.values())

    def pool_list_pages(self) -> int:
        """Pool list pages when the pool resources are due: per resource group ceil(pools / page size), at least 1."""
        per_group = Counter((pool.subscription_id, pool.resource_group) for pool in self.layout)
        return sum(max(1, math.ceil(count / self.page_size)) for count in per_group.values())

    def cold_reads(self) -> int:
        """pools (runtime views) + pool list pages + container group list pages + members."""
        return self.pools + self.pool_list_pages() + self.list_pages() + self.pools * self.members

    def steady_reads(self, pool_lists_due: int = 0, members_due: int = 0) -> int:
        """pools (runtime views) + pool list pages due + container group list pages + members due."""
        return self.pools + pool_lists_due + self.list_pages() + members_due


@dataclass
class Cycle:
    label: str
    wall: float
    reads: dict[str, int]
    statuses: dict[int, int]
    tokens: int
    pools_up: int
    members_seen: int
    render_seconds: float | None = None
    series: int | None = None

    @property
    def total(self) -> int:
        return sum(self.reads.values())


@dataclass
class CyclesResult:
    world: World
    concurrency: int
    latency: float
    cycles: list[Cycle] = field(default_factory=list)
    sequential_mean: float | None = None
    sequential_samples: int = 0
    refresh_after: float | None = None  # seconds the refresh cycle's clock was moved on (max of pool/member refresh)
    interval: float = 60.0
    member_refresh: float = 600.0

    def cycle(self, label: str) -> Cycle | None:
        return next((cycle for cycle in self.cycles if cycle.label == label), None)

    @property
    def steady(self) -> list[Cycle]:
        return [cycle for cycle in self.cycles if cycle.label.startswith("steady")]


def settings_for(url: str, world: World, *, concurrency: int, rate: float = 0.0, burst: int = 50,
                 interval: float = 60.0, extra: dict[str, Any] | None = None) -> Settings:
    polling = {"interval": interval, "timeout": 30, "concurrency": concurrency, "stale_after": max(300.0, 5 * interval)}
    polling.update(extra or {})
    return load_settings({
        "azure": {"resource_manager_endpoint": url, "max_reads_per_second": rate, "max_read_burst": burst},
        "polling": polling,
        "pools": [{"subscription_id": p.subscription_id, "resource_group": p.resource_group, "name": p.name} for p in world.layout],
    })


def make_poller(sim: SimulatorProcess, settings: Settings, *, budget: bool = True,
                monotonic: Callable[[], float] = time.monotonic) -> tuple[Poller, ArmClient]:
    """Poller + ArmClient as exporter.cli builds them, plus ``ReadBudget`` from the settings."""
    stats = ArmStats()
    client = ArmClient(
        settings.azure.resource_manager_endpoint, sim.credential(), settings.azure.token_scope,
        timeout=settings.polling.timeout, observer=stats,
        budget=ReadBudget(settings.azure.max_reads_per_second, settings.azure.max_read_burst) if budget else None,
        pool_size=max(16, settings.polling.concurrency * 2),
    )
    return Poller(settings, client, stats, monotonic=monotonic), client


def tally(records: list[RequestRecord]) -> tuple[Counter[str], Counter[int], int]:
    """(ARM reads by operation, ARM statuses, token requests) of a request log."""
    arm = [record for record in records if record.operation != "token" and record.subscription_id is not None]
    return (Counter(record.operation for record in arm), Counter(record.status for record in arm),
            sum(record.operation == "token" for record in records))


def timed_cycle(label: str, sim: SimulatorProcess, poller: Poller, *, with_render: bool = False) -> tuple[Cycle, Snapshot]:
    sim.reset_requests()
    started = time.perf_counter()
    snapshot = poller.poll_once()
    wall = time.perf_counter() - started
    reads, statuses, tokens = tally(sim.requests())
    cycle = Cycle(label, wall, dict(reads), dict(statuses), tokens, pools_up=sum(status.up for status in snapshot.pools),
                  members_seen=sum(len(status.data.members) for status in snapshot.pools if status.data is not None))
    if with_render:
        started = time.perf_counter()
        exposition = render(snapshot)
        cycle.render_seconds = time.perf_counter() - started
        cycle.series = sum(1 for line in exposition.text.splitlines() if line and not line.startswith(b"#"))
    return cycle, snapshot


def sequential_latency(client: ArmClient, snapshot: Snapshot, samples: int) -> float:
    """Mean wall time of ``samples`` single reads one after another (runtime views and member GETs alternating)."""
    versions = {"standby_pool": "2025-03-01", "container_instance": "2025-09-01"}
    targets: list[tuple[str, str, str, str]] = []
    for status in snapshot.pools:
        ref = status.ref
        targets.append((f"{pool_path(ref)}/runtimeViews/latest", versions["standby_pool"], "runtime_view", ref.subscription_id))
        if status.data is not None and status.data.members:
            member = status.data.members[0].name
            targets.append((f"{container_groups_path(ref.subscription_id, ref.resource_group)}/{member}",
                            versions["container_instance"], "container_group", ref.subscription_id))
        if len(targets) >= samples:
            break
    targets = (targets * (samples // max(1, len(targets)) + 1))[:samples]
    for path, version, operation, sub in targets[:5]:  # warm the connection and the token
        client.get(path, version, operation=operation, subscription_id=sub)
    durations = []
    for path, version, operation, sub in targets:
        started = time.perf_counter()
        client.get(path, version, operation=operation, subscription_id=sub)
        durations.append(time.perf_counter() - started)
    return statistics.fmean(durations)


def run_cycles(world: World, *, latency: float, concurrency: int, steady_cycles: int = 2,
               sequential_samples: int = 200, refresh_cycle: bool = True, log: Any = print) -> CyclesResult:
    """One cold and ``steady_cycles`` steady cycles (no budget limit), ``sequential_samples`` sequential reads, then
    (``refresh_cycle``) one more cycle with the poller's clock moved past ``polling.member_refresh`` and ``pool_refresh``:
    the cycle in which every cached member and pool resource is due again."""
    result = CyclesResult(world, concurrency, latency)
    log(f"[cycles] simulator: {world.pools} pools x {world.members} members in {world.resource_groups} resource groups, latency {latency * 1000:g} ms")
    with SimulatorProcess(pools=world.pools, members=world.members, resource_groups=world.resource_groups,
                          latency=latency, page_size=world.page_size, subscriptions=world.subscriptions) as sim:
        settings = settings_for(sim.url, world, concurrency=concurrency, rate=0.0)
        offset = [0.0]
        poller, client = make_poller(sim, settings, monotonic=lambda: time.monotonic() + offset[0])
        result.interval, result.member_refresh = settings.polling.interval, settings.polling.member_refresh
        try:
            for index in range(1 + steady_cycles):
                label = "cold" if index == 0 else f"steady{index}"
                cycle, snapshot = timed_cycle(label, sim, poller, with_render=index == 0)
                result.cycles.append(cycle)
                log(f"[cycles] {label}: {cycle.total} ARM reads in {cycle.wall:.2f} s ({dict(cycle.reads)}; statuses {dict(cycle.statuses)})")
            result.sequential_mean = sequential_latency(client, snapshot, sequential_samples)
            result.sequential_samples = sequential_samples
            log(f"[cycles] sequential single reads: mean {result.sequential_mean * 1000:.2f} ms over {sequential_samples}")
            if refresh_cycle:
                offset[0] = result.refresh_after = max(settings.polling.member_refresh, settings.polling.pool_refresh) + 1.0
                cycle, _ = timed_cycle("refresh", sim, poller)
                result.cycles.append(cycle)
                log(f"[cycles] refresh (clock +{offset[0]:g} s): {cycle.total} ARM reads in {cycle.wall:.2f} s ({dict(cycle.reads)})")
        finally:
            poller.stop()
            client.close()
    return result
