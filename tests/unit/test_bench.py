"""Smoke test of the benchmark code (``python -m bench``) at tiny sizes; no timing is asserted."""

from __future__ import annotations

import time

import pytest

from bench import cli
from bench.budget import max_in_window, pause_check
from bench.cycles import World
from bench.scrape import build_snapshot, count_series, percentile, shape_for
from exporter.exposition import render
from exporter.simulator import Simulator
from exporter.simulator.bench_world import bench_layout, build_bench
from exporter.simulator.world import RequestRecord


def test_reads_formula() -> None:
    world = World(pools=1000, members=20, resource_groups=50)
    assert world.list_pages() == 50 * 8  # 400 container groups per resource group, 50 per page
    assert world.pool_list_pages() == 50  # 20 pools per resource group, one page each
    assert world.cold_reads() == 1000 + 50 + 400 + 20_000
    assert world.steady_reads() == 1000 + 400
    small = World(pools=3, members=5, resource_groups=2, page_size=4)
    assert small.list_pages() == 3 + 2  # rg 0: 2 pools, 10 groups; rg 1: 1 pool, 5 groups


def test_bench_world_layout_and_list_index() -> None:
    clock = [100.0]
    sim = build_bench(Simulator, 3, 2, 2)
    sim.clock = lambda: clock[0]
    assert [(p.resource_group, p.name) for p in bench_layout(3, 2)] == [
        ("rg-bench-000", "pool-00000"), ("rg-bench-001", "pool-00001"), ("rg-bench-000", "pool-00002")]
    sub = bench_layout(1, 1)[0].subscription_id
    with sim.lock:
        assert len(sim.container_groups(sub, "RG-BENCH-000")) == 4 and len(sim.container_groups(sub)) == 6
    gone = sim.claim(sub, "rg-bench-000", "pool-00000", 1)
    clock[0] += 10
    sim.tick()  # finishes the deletion and (refill) creates a replacement
    with sim.lock:
        names = {group.name for group in sim.container_groups(sub, "rg-bench-000")}
        assert gone[0] not in names and len(names) == 4
        assert names == {group.name for group in sim.container_groups(sub) if group.resource_group == "rg-bench-000"}


def test_window_and_pause_checks() -> None:
    assert max_in_window([0.0, 0.5, 0.99, 1.0, 1.5]) == (3, 0.0)
    assert max_in_window([]) == (0, None)

    def record(at: float, status: int = 200, sub: str = "s") -> RequestRecord:
        return RequestRecord(at, at, "GET", "/x", {}, sub, status, "runtime_view")

    log = [record(1.0), record(2.0, 429), record(3.0, sub="other"), record(7.25), record(7.5)]
    assert pause_check(log, "s", 5.0) == (2.0, 0, 5.25)
    assert pause_check([*log, record(6.5)], "s", 5.0) == (2.0, 1, 4.5)
    assert pause_check([*log, record(2.01)], "s", 5.0)[1] == 1
    assert pause_check([record(1.0)], "s", 5.0) == (None, 0, None)


def test_percentile_and_synthetic_snapshots() -> None:
    assert percentile([float(v) for v in range(1, 11)], 0.5) == 5.0
    assert percentile([float(v) for v in range(1, 201)], 0.99) == 198.0
    snapshot = build_snapshot(2, 3)
    assert sum(len(status.data.members) for status in snapshot.pools if status.data) == 6
    pools, members = shape_for(1000)
    assert abs(count_series(render(build_snapshot(pools, members)).text) - 1000) <= 20


def test_bench_runs_end_to_end_at_tiny_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    code = cli.main([
        "--pools=6", "--members=2", "--resource-groups=2", "--latency=0", "--concurrency=4", "--steady-cycles=1",
        "--sequential=5", "--scrape-series=200", "--samples=5", "--warmup=1", "--budget-world=3x2x2", "--rate=20",
        "--burst=4", "--retry-after=1", "--burst-scenario=20/4/8/1", "--memory-cycles=1", "--memory-interval=1", "--quick", "--no-save",
    ])
    out = capsys.readouterr().out
    assert code == 0
    assert out.count("\n| ") >= 20 and "| ARM reads per cycle, cold: total" in out
    assert "| 22 (formula 22)" in out and "| 8 (formula 8)" in out  # cold 6 + 2 pool pages + 2 pages + 12 members; steady 6 + 2
    for verdict in ("reads", "budget window", "budget pause", "budget after pause", "small burst window", "small burst pause",
                    "small burst after pause", "memory"):
        assert f"PASS  {verdict}:" in out, out
    assert time.monotonic() - started < 30
