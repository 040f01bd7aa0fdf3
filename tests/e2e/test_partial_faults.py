"""Each part of a pool is kept or fails on its own, through the real exporter process against the simulator:
a failing member, a failing pool list, a failing member list, a malformed list item; counters and the
global read bucket from the first scrape."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from exporter.simulator import Fault, Simulator, SimulatorServer, shapes
from tests.e2e.conftest import SUB, ExporterProcess, pool_config

pytestmark = pytest.mark.e2e

RG = "rg-one"
OTHER_SUB = "11111111-1111-1111-1111-111111111111"
CONTAINER_GROUPS = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.ContainerInstance/containerGroups"
POOL_LIST = f"/resourceGroups/{RG}/providers/Microsoft.StandbyPool/standbyContainerGroupPools$"


def member_names(sim: Simulator, pool: str) -> list[str]:
    with sim.lock:
        return sorted(group.name for group in sim.container_groups(SUB, RG) if group.name.startswith(f"{pool}_"))


def running(exporter: ExporterProcess, pool: str = "web") -> float | None:
    return exporter.value("azure_standby_pool_instances", pool=pool, state="Running", availability_zone="")


def published_members(exporter: ExporterProcess, pool: str = "web") -> set[str]:
    return {labels["member"] for labels, _ in exporter.samples("azure_standby_pool_member_ready") if labels["pool"] == pool}


def value(exporter: ExporterProcess, name: str, pool: str = "web") -> float | None:
    return exporter.value(f"azure_standby_pool_{name}", pool=pool)


def start_web(sim: Simulator, server: SimulatorServer, start_exporter: Callable[..., ExporterProcess], running_members: int = 3,
              **polling: Any) -> ExporterProcess:
    sim.add_container_group_pool(SUB, RG, "web", max_ready_capacity=running_members, running=running_members, creating=0)
    return start_exporter(pool_config(server, (RG, "web"), **polling), server)


def test_a_member_whose_read_always_fails_costs_only_that_member(simulator, start_exporter) -> None:
    sim, server = simulator
    sim.add_container_group_pool(SUB, RG, "web", max_ready_capacity=3, running=3, creating=0)
    broken = member_names(sim, "web")[-1]
    sim.faults.add(Fault(match=f"/containerGroups/{broken}", status=500))
    exporter = start_exporter(pool_config(server, (RG, "web")), server)
    exporter.wait_for(lambda: value(exporter, "member_read_failures") == 1, what="one member read failing")
    assert value(exporter, "up") == 1 and value(exporter, "members_up") == 1 and value(exporter, "resource_up") == 1
    assert running(exporter) == 3 and value(exporter, "max_ready_capacity") == 3
    assert published_members(exporter) == set(member_names(sim, "web")) - {broken}  # never read: not published

    sim.claim(SUB, RG, "web", 1)  # the runtime view changes: its counts follow while the member keeps failing
    exporter.wait_for(lambda: running(exporter) == 2, what="Running 2 after the hand-out")
    assert value(exporter, "up") == 1
    assert value(exporter, "member_read_failures") == 1  # a handed-out container group stays listed (and failing)
    failed = [line for line in exporter.lines if 'msg="pool part read failed"' in line and 'part=members' in line]
    assert failed and broken in failed[0] and "kind=server" in failed[0]


def test_a_member_read_then_failing_is_kept_until_stale_then_dropped(simulator, start_exporter) -> None:
    sim, server = simulator
    exporter = start_web(sim, server, start_exporter, stale_after="6s", member_refresh="1s")
    names = member_names(sim, "web")
    exporter.wait_for(lambda: published_members(exporter) == set(names), what="every member published")
    failing = names[0]
    sim.faults.add(Fault(match=f"/containerGroups/{failing}", status=503))
    exporter.wait_for(lambda: value(exporter, "member_read_failures") == 1, what="the member's reads failing")
    assert failing in published_members(exporter)  # kept: last good values, until stale_after
    exporter.wait_for(lambda: failing not in published_members(exporter), timeout=20, what="the failing member dropped once stale")
    assert published_members(exporter) == set(names[1:]) and value(exporter, "member_read_failures") == 1
    assert value(exporter, "up") == 1 and running(exporter) == 3 and value(exporter, "members_up") == 1

    sim.faults.clear()
    exporter.wait_for(lambda: published_members(exporter) == set(names) and value(exporter, "member_read_failures") == 0,
                      what="the member back")


def test_a_member_that_is_gone_drops_at_once(simulator, start_exporter) -> None:
    sim, server = simulator
    exporter = start_web(sim, server, start_exporter, stale_after="1m", member_refresh="1s")
    names = member_names(sim, "web")
    exporter.wait_for(lambda: published_members(exporter) == set(names), what="every member published")
    sim.faults.add(Fault(match=f"/containerGroups/{names[0]}", status=404))
    exporter.wait_for(lambda: names[0] not in published_members(exporter), what="the 404 member dropped")
    assert value(exporter, "member_read_failures") == 0 and value(exporter, "up") == 1


def test_a_malformed_list_item_costs_only_itself_and_is_named_once(simulator, start_exporter) -> None:
    sim, server = simulator
    sim.add_container_group_pool(SUB, RG, "web", max_ready_capacity=2, running=2, creating=0)
    with sim.lock:
        items = [shapes.container_group(group, False, sim.wall, "2025-09-01") for group in sim.container_groups(SUB, RG)]
    bad_id = f"{CONTAINER_GROUPS}/web_broken"
    items.append({"id": bad_id, "name": 42, "properties": {"provisioningState": "Succeeded"}})  # a name that is not a string
    sim.serve_verbatim(CONTAINER_GROUPS, "2025-09-01", json.dumps({"value": items}).encode())
    exporter = start_exporter(pool_config(server, (RG, "web")), server)
    exporter.wait_for(lambda: published_members(exporter) == set(member_names(sim, "web")), what="the good members published")

    def list_reads() -> float:
        return sum(v for labels, v in exporter.samples("azure_standby_pool_arm_requests_total") if labels["operation"] == "container_group_list")

    first = list_reads()
    exporter.wait_for(lambda: list_reads() >= first + 3, what="three more cycles")
    assert value(exporter, "up") == 1 and value(exporter, "members_up") == 1 and value(exporter, "members_ready") == 2
    skipped = [line for line in exporter.lines if 'msg="malformed list item skipped"' in line]
    assert len(skipped) == 1 and bad_id in skipped[0] and "container group name" in skipped[0]  # once, not every cycle


def test_the_pool_list_failing_costs_only_the_pool_resource(simulator, start_exporter) -> None:
    sim, server = simulator
    # stale_after leaves room for a slow cycle on a busy machine between resource_up 0 (pool_refresh) and the
    # capacity series going (pool_refresh + stale_after); 403 is not retried, so each failing cycle stays short.
    exporter = start_web(sim, server, start_exporter, pool_refresh="2s", stale_after="10s")
    exporter.wait_for(lambda: value(exporter, "resource_up") == 1 and value(exporter, "max_ready_capacity") == 3, what="pool resource read")
    sim.faults.add(Fault(match=POOL_LIST, status=403))
    exporter.wait_for(lambda: value(exporter, "resource_up") == 0, what="resource_up 0 once the cached resource is older than pool_refresh")
    assert value(exporter, "max_ready_capacity") == 3  # kept until pool_refresh + stale_after
    assert value(exporter, "up") == 1 and running(exporter) == 3
    exporter.wait_for(lambda: value(exporter, "max_ready_capacity") is None, timeout=30, what="capacity series gone after stale_after")
    assert exporter.value("azure_standby_pool_provisioning_state", pool="web", state="Succeeded") is None
    assert not [labels for labels, _ in exporter.samples("azure_standby_pool_info") if labels["pool"] == "web"]
    sim.claim(SUB, RG, "web", 1)
    exporter.wait_for(lambda: running(exporter) == 2, what="counts fresh without the pool resource")
    assert value(exporter, "up") == 1 and value(exporter, "members_up") == 1
    page = exporter.get("/").text
    assert "<b>pool resource</b>: forbidden:" in page  # the status page says which part failed and why
    (pool,) = exporter.get("/status.json").json()["pools"]
    assert pool["parts"] == {"runtime_view": True, "pool_resource": False, "member_list": True} and pool["max_ready_capacity"] is None

    sim.faults.clear()
    exporter.wait_for(lambda: value(exporter, "resource_up") == 1 and value(exporter, "max_ready_capacity") == 3, what="resource back")


def test_the_member_list_failing_keeps_the_counts_fresh(simulator, start_exporter) -> None:
    sim, server = simulator
    exporter = start_web(sim, server, start_exporter)
    exporter.wait_for(lambda: value(exporter, "members_up") == 1 and value(exporter, "members_ready") == 3, what="members read")
    sim.faults.add(Fault(match="/providers/Microsoft.ContainerInstance/containerGroups$", status=500))
    exporter.wait_for(lambda: value(exporter, "members_up") == 0, what="members_up 0")
    sim.claim(SUB, RG, "web", 2)
    exporter.wait_for(lambda: running(exporter) == 1, what="Running 1 while the member list fails")
    assert value(exporter, "up") == 1 and value(exporter, "resource_up") == 1
    assert value(exporter, "members_ready") == 3  # the last good member list, kept until stale_after (1m)
    failed = [line for line in exporter.lines if 'msg="pool part read failed"' in line and 'part="member list"' in line]
    assert failed and "operation=container_group_list" in failed[-1]


def test_counters_and_the_global_read_bucket_from_the_first_scrape(simulator, start_exporter) -> None:
    sim, server = simulator
    sim.add_container_group_pool(SUB, RG, "web", max_ready_capacity=2, running=2, creating=0)
    config = pool_config(server, (RG, "web"))
    config["discovery"] = {"subscriptions": [OTHER_SUB], "interval": "1h"}  # a subscription ARM does not know: no pools, no events
    exporter = start_exporter(config, server)
    for name in ("arm_throttled_total", "arm_budget_wait_seconds_total", "arm_next_links_refused_total"):
        series = {labels["subscription_id"]: v for labels, v in exporter.samples(f"azure_standby_pool_{name}")}
        assert series == {SUB: 0, OTHER_SUB: 0}, name  # from the very first scrape, before any cycle completed
    exporter.wait_for(lambda: exporter.value("azure_standby_pool_up", pool="web") == 1, what="the first cycle published")
    remaining = exporter.value("azure_standby_pool_arm_ratelimit_remaining_reads", subscription_id=SUB)
    shared = exporter.value("azure_standby_pool_arm_ratelimit_remaining_global_reads", subscription_id=SUB)
    assert remaining is not None and shared is not None
    assert 0 < remaining < 250 and 250 * 15 - 250 < shared < 250 * 15  # ARM's buckets: 250 per principal, 15x globally
