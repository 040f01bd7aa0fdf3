"""Poller against the in-process simulator over real HTTP: refresh rules, waves, discovery, sharding, staleness."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from exporter.arm import ArmClient, ReadBudget, RetryPolicy
from exporter.armstats import ArmStats
from exporter.config import PoolRef, load_settings
from exporter.poller import Poller, WarnOnce, shard_of
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
    assert good.up and not flaky.up and flaky.data is not None and flaky.data.runtime is not None
    assert [(e.part, e.error.split(":")[0]) for e in flaky.errors] == [("runtime view", "server")]
    clock.now += 180  # older than stale_after: only the runtime view's series drop; the other parts were read
    good, flaky = poller.poll_once().pools
    assert flaky.data is not None and flaky.data.runtime is None and flaky.last_success is not None and good.data is not None
    assert flaky.data.pool is not None and flaky.data.members is not None and flaky.resource_up and flaky.members_up
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


# ---- each part of a pool on its own -------------------------------------------------------------------

def _member_names(sim: Simulator, rg: str, pool: str) -> list[str]:
    with sim.lock:
        return sorted(group.name for group in sim.container_groups(SUB, rg) if group.name.startswith(f"{pool}_"))


def test_member_detail_failures_are_isolated_and_retried_every_cycle(world: tuple[Simulator, SimulatorServer]) -> None:
    sim, server = world
    sim.add_container_group_pool(SUB, "rg", "web", max_ready_capacity=3, running=3, creating=0)
    first, second, third = _member_names(sim, "rg", "web")
    clock = FakeClock()
    poller = make_poller(server, sim, clock, pools=pools(("rg", "web")), polling={"interval": "1m", "stale_after": "3m"})
    sim.faults.add(Fault(match=f"/containergroups/{third}", status=500))  # never read successfully
    [status] = poller.poll_once().pools
    assert status.up and status.members_up and status.resource_up and status.member_read_failures == 1
    assert [m.name for m in status.data.members] == [first, second]  # never read: not published
    assert [(e.part, e.error.split(":")[0]) for e in status.errors] == [("members", "server")] and third in status.last_error

    for _ in range(2):  # the failed member is read again every cycle; the good ones only when due (member_refresh 10m)
        clock.now += 60
        sim.reset_requests()
        [status] = poller.poll_once().pools
        reads = Counter(r.path.rsplit("/", 1)[-1] for r in sim.requests if r.operation == "container_group")
        assert reads == Counter({third: 2})  # two attempts (RetryPolicy attempts=2), no other member
        assert status.member_read_failures == 1 and [m.name for m in status.data.members] == [first, second]
    clock.now += 600  # longer than stale_after, but the good members were not due: they stay published
    [status] = poller.poll_once().pools
    assert [m.name for m in status.data.members] == [first, second] and status.up


def test_a_member_read_then_failing_drops_once_stale_and_a_404_drops_at_once(world: tuple[Simulator, SimulatorServer]) -> None:
    sim, server = world
    sim.add_container_group_pool(SUB, "rg", "web", max_ready_capacity=3, running=3, creating=0)
    first, second, third = _member_names(sim, "rg", "web")
    clock = FakeClock()
    poller = make_poller(server, sim, clock, pools=pools(("rg", "web")),
                         polling={"interval": "1m", "stale_after": "3m", "member_refresh": "1m"})
    poller.poll_once()
    sim.faults.add(Fault(match=f"/containergroups/{first}", status=500))
    sim.faults.add(Fault(match=f"/containergroups/{second}", status=404))
    clock.now += 60
    [status] = poller.poll_once().pools
    assert [m.name for m in status.data.members] == [first, third]  # failing: kept; gone (404): dropped at once
    assert status.member_read_failures == 1
    clock.now += 150  # 210 s after the first member's last good read: older than stale_after
    [status] = poller.poll_once().pools
    assert [m.name for m in status.data.members] == [third] and status.member_read_failures == 1 and status.up
    sim.faults.clear()
    clock.now += 60
    [status] = poller.poll_once().pools
    assert [m.name for m in status.data.members] == [first, second, third] and status.member_read_failures == 0


def test_the_pool_resource_is_fresh_within_pool_refresh_and_dropped_after_stale_after(world: tuple[Simulator, SimulatorServer]) -> None:
    sim, server = world
    sim.add_container_group_pool(SUB, "rg", "web", max_ready_capacity=2, running=2, creating=0)
    clock = FakeClock()
    poller = make_poller(server, sim, clock, pools=pools(("rg", "web")),
                         polling={"interval": "1m", "stale_after": "3m", "pool_refresh": "5m"})
    [status] = poller.poll_once().pools
    assert status.resource_up and status.data.pool.max_ready_capacity == 2
    sim.faults.add(Fault(match="/providers/Microsoft.StandbyPool/standbyContainerGroupPools$", status=500))
    clock.now += 240
    [status] = poller.poll_once().pools  # not due yet: the cached list is 4 minutes old
    assert status.resource_up and status.errors == ()
    clock.now += 60
    [status] = poller.poll_once().pools  # due, failing: older than pool_refresh, kept
    assert not status.resource_up and status.data.pool is not None and status.up
    assert [e.part for e in status.errors] == ["pool resource"]
    clock.now += 180  # 8 minutes: pool_refresh + stale_after
    [status] = poller.poll_once().pools
    assert status.data.pool is None and status.data.runtime is not None and status.data.members is not None and status.up
    sim.faults.clear()
    clock.now += 60
    [status] = poller.poll_once().pools
    assert status.resource_up and status.data.pool is not None


def test_the_member_list_failing_keeps_the_last_members_until_stale(world: tuple[Simulator, SimulatorServer]) -> None:
    sim, server = world
    sim.add_container_group_pool(SUB, "rg", "web", max_ready_capacity=2, running=2, creating=0)
    clock = FakeClock()
    poller = make_poller(server, sim, clock, pools=pools(("rg", "web")), polling={"interval": "1m", "stale_after": "3m"})
    poller.poll_once()
    sim.faults.add(Fault(match="/providers/Microsoft.ContainerInstance/containerGroups$", status=500))
    clock.now += 60
    [status] = poller.poll_once().pools
    assert status.up and not status.members_up and len(status.data.members) == 2
    clock.now += 180
    [status] = poller.poll_once().pools
    assert status.data.members is None and status.data.runtime is not None
    sim.faults.clear()
    clock.now += 60
    [status] = poller.poll_once().pools
    assert status.members_up and len(status.data.members) == 2


def test_malformed_items_cost_only_themselves_and_are_named_once(world: tuple[Simulator, SimulatorServer],
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    sim, server = world
    sim.add_container_group_pool(SUB, "rg", "web", max_ready_capacity=1, running=1, creating=0)
    body = {"value": [
        {"id": f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.StandbyPool/standbyContainerGroupPools/web",
         "name": "web", "location": "westeurope", "properties": {"provisioningState": "Succeeded"}},
        {"id": f"/subscriptions/{SUB}/resourceGroups/rg/provider/Microsoft.StandbyPool/standbyContainerGroupPools/typo", "name": "typo"},
        "not an object",
    ]}
    sim.serve_verbatim(f"/subscriptions/{SUB}/providers/Microsoft.StandbyPool/standbyContainerGroupPools", "2025-03-01",
                       json.dumps(body).encode())
    poller = make_poller(server, sim, discovery={"subscriptions": [SUB], "kinds": ["container_group"]})
    with caplog.at_level("WARNING", logger="exporter"):
        for _ in range(3):
            poller.discover_once()
    assert [ref.name for ref in poller.pools()] == ["web"]  # one malformed pool does not fail the subscription
    skipped = [r for r in caplog.records if r.getMessage() == "malformed list item skipped"]
    assert [r.item for r in skipped] == [body["value"][1]["id"], "a str, not an object"]  # each once, not every discovery
    assert poller.poll_once().pools[0].up


def test_warn_once_remembers_a_bounded_number_of_items() -> None:
    warned = WarnOnce(limit=3)
    assert [warned.first_time(key) for key in "abca"] == [True, True, True, False]
    assert warned.first_time("d") and warned.first_time("b")  # "b" was the oldest: forgotten to keep the bound
