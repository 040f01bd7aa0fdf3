"""Poller against the in-process simulator over real HTTP: refresh rules, waves, discovery, sharding, staleness."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from exporter.arm import ArmClient, ReadBudget, RetryPolicy
from exporter.armstats import ArmStats
from exporter.config import PoolRef, load_settings
from exporter.poller import Poller, shard_of
from exporter.simulator import Fault, Simulator, SimulatorServer
from tests.support.fakes import SUB, FakeClock, SimulatorCredential


@pytest.fixture
def world() -> Iterator[tuple[Simulator, SimulatorServer]]:
    sim = Simulator(seed=3, page_size=4, lowercase_states=0.0, create_seconds=(3600.0, 3600.0), read_bucket=None)
    server = SimulatorServer(sim, host="127.0.0.1", port=0).start()
    yield sim, server
    server.stop()


def make_poller(server: SimulatorServer, sim: Simulator, clock: FakeClock | None = None, **config: Any) -> Poller:
    settings = load_settings({"azure": {"resource_manager_endpoint": server.url}, **config})
    stats = ArmStats()
    client = ArmClient(server.url, SimulatorCredential(sim), "scope", observer=stats, budget=ReadBudget(0, 1),
                       retry=RetryPolicy(attempts=2, backoff_base=0.01, backoff_max=0.02))
    clock = clock or FakeClock()
    return Poller(settings, client, stats, wall_clock=clock, monotonic=clock)


def pools(*entries: tuple[str, str, str] | tuple[str, str]) -> list[dict[str, str]]:
    return [{"subscription_id": SUB, "resource_group": e[0], "name": e[1], **({"kind": e[2]} if len(e) > 2 else {})} for e in entries]


def operations(sim: Simulator) -> Counter[str]:
    return Counter(record.operation for record in sim.requests)


def test_refresh_rules_read_only_what_is_due(world: tuple[Simulator, SimulatorServer]) -> None:
    sim, server = world
    sim.add_container_group_pool(SUB, "rg", "web", max_ready_capacity=6, running=5, creating=1)
    clock = FakeClock()
    poller = make_poller(server, sim, clock, pools=pools(("rg", "web")), polling={"member_refresh": "10m", "pool_refresh": "5m"})

    poller.poll_once()  # cold: everything; the pool resource comes from its resource group's pool list
    assert operations(sim) == Counter(runtime_view=1, pool_list=1, container_group_list=2, container_group=6)

    sim.reset_requests()
    clock.now += 60
    poller.poll_once()  # steady: runtime view, list pages, the one member that is not ready
    assert operations(sim) == Counter(runtime_view=1, container_group_list=2, container_group=1)

    sim.reset_requests()
    [claimed] = sim.claim(SUB, "rg", "web", 1)  # its state in the list changes (Deleting)
    clock.now += 60
    snapshot = poller.poll_once()
    assert operations(sim)["container_group"] == 2 and operations(sim)["pool_list"] == 0
    assert claimed in {r.path.rsplit("/", 1)[-1] for r in sim.requests if r.operation == "container_group"}
    assert snapshot.pools[0].up

    sim.reset_requests()
    clock.now += 5 * 60  # pool resources due again
    poller.poll_once()
    assert operations(sim)["pool_list"] == 1


def test_aged_members_are_refreshed_oldest_first_spread_over_the_period(world: tuple[Simulator, SimulatorServer]) -> None:
    sim, server = world
    sim.add_container_group_pool(SUB, "rg", "big", max_ready_capacity=40)
    clock = FakeClock()
    poller = make_poller(server, sim, clock, pools=pools(("rg", "big")), polling={"interval": "1m", "member_refresh": "10m"})
    sim.page_size = 100
    poller.poll_once()
    clock.now += 600  # every member aged at once: only this cycle's share (40 x 60 / 600 = 4) is read
    refreshed: list[str] = []
    for _ in range(10):
        sim.reset_requests()
        poller.poll_once()
        reads = [r.path.rsplit("/", 1)[-1] for r in sim.requests if r.operation == "container_group"]
        assert len(reads) == 4
        refreshed += reads
        clock.now += 60
    assert len(set(refreshed)) == 40  # each member exactly once over the period


def test_a_pool_missing_from_its_resource_groups_list_is_gone(world: tuple[Simulator, SimulatorServer]) -> None:
    sim, server = world
    sim.add_container_group_pool(SUB, "rg", "real", max_ready_capacity=1)
    poller = make_poller(server, sim, pools=pools(("rg", "real"), ("rg", "ghost")))
    real, ghost = poller.poll_once().pools
    assert real.up and not ghost.up and ghost.data is None and "not_found" in (ghost.last_error or "")


def test_one_list_per_resource_group_shared_by_its_pools(world: tuple[Simulator, SimulatorServer]) -> None:
    sim, server = world
    for name in ("a-pool", "b-pool", "c-pool"):
        sim.add_container_group_pool(SUB, "shared", name, max_ready_capacity=2)
    sim.add_container_group_pool(SUB, "alone", "d-pool", max_ready_capacity=2)
    poller = make_poller(server, sim, pools=pools(("shared", "a-pool"), ("SHARED", "b-pool"), ("shared", "c-pool"), ("alone", "d-pool")))
    snapshot = poller.poll_once()
    first_pages = [r for r in sim.requests if r.operation == "container_group_list" and "$skiptoken" not in r.query]
    assert sorted(r.path.split("/")[4].lower() for r in first_pages) == ["alone", "shared"]
    assert all(status.up and len(status.data.members) == 2 for status in snapshot.pools)


def test_virtual_machine_pool_members_and_readiness(world: tuple[Simulator, SimulatorServer]) -> None:
    sim, server = world
    sim.add_virtual_machine_pool(SUB, "rg-vm", "vm-pool", max_ready_capacity=3, min_ready_capacity=1, virtual_machine_state="Deallocated")
    poller = make_poller(server, sim, pools=pools(("rg-vm", "vm-pool", "virtual_machine")))
    [status] = poller.poll_once().pools
    assert status.up, status.last_error
    assert status.data.pool.min_ready_capacity == 1 and status.data.pool.virtual_machine_state == "Deallocated"
    assert len(status.data.members) == 3 and all(m.ready and m.in_pool and m.state == "deallocated" for m in status.data.members)
    sim.claim(SUB, "rg-vm", "vm-pool", 1)
    [status] = poller.poll_once().pools
    assert len(status.data.members) in (2, 3)  # the claimed VM left the list; a refill may be Creating
    assert sum(m.ready for m in status.data.members) == 2


def test_failures_isolate_pools_keep_fresh_values_and_drop_on_404(world: tuple[Simulator, SimulatorServer]) -> None:
    sim, server = world
    sim.add_container_group_pool(SUB, "rg", "good", max_ready_capacity=2)
    sim.add_container_group_pool(SUB, "rg", "flaky", max_ready_capacity=2)
    clock = FakeClock()
    poller = make_poller(server, sim, clock, pools=pools(("rg", "good"), ("rg", "flaky")), polling={"interval": "1m", "stale_after": "3m"})
    poller.poll_once()
    sim.faults.add(Fault(match="standbycontainergrouppools/flaky/runtimeviews", status=500))
    clock.now += 60
    good, flaky = poller.poll_once().pools
    assert good.up and not flaky.up and flaky.data is not None and "server" in (flaky.last_error or "")
    clock.now += 180  # older than stale_after
    good, flaky = poller.poll_once().pools
    assert flaky.data is None and flaky.last_success is not None and good.data is not None
    sim.faults.clear()
    clock.now += 60
    assert all(status.up for status in poller.poll_once().pools)
    sim.delete_pool(SUB, "rg", "good")
    clock.now += 60
    good, flaky = poller.poll_once().pools
    assert not good.up and good.data is None and flaky.up  # 404 drops values at once


def test_discovery_adds_and_removes_pools_and_dedupes_configured(world: tuple[Simulator, SimulatorServer]) -> None:
    sim, server = world
    sim.add_container_group_pool(SUB, "rg-a", "web-one", max_ready_capacity=1, tags={"team": "web"})
    sim.add_container_group_pool(SUB, "rg-a", "web-two", max_ready_capacity=1)
    sim.add_virtual_machine_pool(SUB, "rg-b", "web-vm", max_ready_capacity=1, tags={"team": "web"})
    sim.add_container_group_pool(SUB, "rg-b", "web-test", max_ready_capacity=1, tags={"team": "web"})
    poller = make_poller(
        server, sim, pools=pools(("RG-A", "WEB-ONE")),
        discovery={"subscriptions": [SUB], "include": "web-.*", "exclude": ".*-test", "tags": {"team": "web"}},
    )
    poller.discover_once()
    refs = poller.pools()
    assert [(r.resource_group, r.name, r.kind) for r in refs] == [("RG-A", "WEB-ONE", "container_group"), ("rg-b", "web-vm", "virtual_machine")]
    snapshot = poller.poll_once()
    assert snapshot.discovered == {(SUB, "container_group"): 1, (SUB, "virtual_machine"): 1}
    assert all(status.up for status in snapshot.pools)

    sim.delete_pool(SUB, "rg-b", "web-vm")
    sim.add_container_group_pool(SUB, "rg-b", "web-new", max_ready_capacity=1, tags={"team": "web"})
    poller.discover_once()
    snapshot = poller.poll_once()
    assert sorted(status.ref.name for status in snapshot.pools) == ["WEB-ONE", "web-new"]


def test_failed_discovery_keeps_what_it_had(world: tuple[Simulator, SimulatorServer]) -> None:
    sim, server = world
    sim.add_container_group_pool(SUB, "rg", "found", max_ready_capacity=1)
    poller = make_poller(server, sim, discovery={"subscriptions": [SUB], "kinds": ["container_group"]})
    poller.discover_once()
    sim.faults.add(Fault(match="/providers/microsoft.standbypool/standbycontainergrouppools", status=503))
    poller.discover_once()
    assert [ref.name for ref in poller.pools()] == ["found"]


def test_shards_partition_the_pools_stably() -> None:
    refs = [PoolRef(SUB, f"rg-{i % 7}", f"pool-{i}") for i in range(300)]
    for count in (1, 2, 3, 5):
        shards = [shard_of(ref, count) for ref in refs]
        assert Counter(shards).keys() <= set(range(count))
        assert shards == [shard_of(ref, count) for ref in refs]  # stable
        if count > 1:
            assert min(Counter(shards).values()) > 300 / count * 0.6  # roughly even
    assert shard_of(PoolRef(SUB, "RG-1", "Pool-1"), 4) == shard_of(PoolRef(SUB, "rg-1", "pool-1"), 4)  # case-insensitive


def test_each_replica_polls_only_its_shard(world: tuple[Simulator, SimulatorServer]) -> None:
    sim, server = world
    entries = [("rg", f"pool-{i}") for i in range(12)]
    polled: list[str] = []
    for index in range(3):
        poller = make_poller(server, sim, pools=pools(*entries), sharding={"index": index, "count": 3})
        polled.extend(ref.name for ref in poller.pools())
    assert sorted(polled) == sorted(name for _, name in entries)


def test_reconfigure_changes_the_pool_set(world: tuple[Simulator, SimulatorServer]) -> None:
    sim, server = world
    sim.add_container_group_pool(SUB, "rg", "first", max_ready_capacity=1)
    sim.add_container_group_pool(SUB, "rg", "second", max_ready_capacity=1)
    poller = make_poller(server, sim, pools=pools(("rg", "first")))
    poller.poll_once()
    poller.reconfigure(load_settings({"azure": {"resource_manager_endpoint": server.url}, "pools": pools(("rg", "second"))}))
    assert [status.ref.name for status in poller.poll_once().pools] == ["second"]


def test_reloads_do_not_postpone_discovery(world: tuple[Simulator, SimulatorServer]) -> None:
    """Discovery keeps its own clock across reloads: only a changed discovery.interval reschedules it."""
    sim, server = world
    azure = {"resource_manager_endpoint": server.url}
    discovery = {"subscriptions": [SUB], "interval": "10m"}
    poller = make_poller(server, sim, clock=time.time, discovery=discovery)  # type: ignore[arg-type]
    poller.start()
    try:
        assert poller._scheduler is not None
        next_run = lambda: poller._scheduler.get_job("discover").next_run_time  # noqa: E731
        first = next_run()
        for interval in ("30s", "45s", "30s"):  # a reload storm that changes other settings
            time.sleep(0.01)
            poller.reconfigure(load_settings({"azure": azure, "discovery": discovery, "polling": {"interval": interval}}))
        assert next_run() == first
        poller.reconfigure(load_settings({"azure": azure, "discovery": {**discovery, "interval": "5m"}}))
        assert next_run() < first  # a shorter interval applies from now
    finally:
        poller.stop()
