"""exporter.status and exporter.landing: the status document and the page's first paint, from snapshots built here."""

from __future__ import annotations

import json

import pytest

from exporter import model
from exporter.armstats import ArmStatsSnapshot
from exporter.config import PoolRef
from exporter.landing import format_age, landing_page, sparkline_points
from exporter.snapshot import MEMBER_LIST, PartError, PoolData, PoolStatus, Snapshot
from exporter.status import ReloadState, StatusContext, status_document
from tests.support.fakes import OTHER_SUB, SUB

NOW = 2_000_000_000.0


def _pool(name: str, kind: str, counts: dict[str, int], maximum: int | None, *, rg: str = "rg", sub: str = SUB,
          vm_state: str | None = None, errors: tuple[PartError, ...] = (), forecast: tuple[float, ...] | None = None,
          dynamic: bool = False) -> PoolStatus:
    runtime = model.RuntimeView(
        tuple(model.InstanceCount("", state, count) for state, count in counts.items()), "Succeeded", "healthy",
        None if forecast is None else model.Forecast(forecast, NOW, 3600.0, 0.9),
    )
    resource = None if maximum is None else model.Pool(name, "westeurope", "Succeeded", maximum, virtual_machine_state=vm_state,
                                                       dynamic_sizing=dynamic)
    members = (model.Member("m1", "Succeeded", "Running", True), model.Member("m2", "Creating", None, False))
    return PoolStatus(PoolRef(sub, rg, name, kind), polled=True, up=True, last_success=NOW - 75, resource_up=maximum is not None,
                      members_up=True, data=PoolData(resource, runtime, members), errors=errors)


def _snapshot(*pools: PoolStatus) -> Snapshot:
    return Snapshot(pools=pools, arm=ArmStatsSnapshot(remaining_reads={SUB: 900, OTHER_SUB: 120}), interval=30, cycles=3,
                    cycle_duration=0.25, discovered={(SUB, "container_group"): 2, (SUB, "virtual_machine"): 1})


def _document(*pools: PoolStatus) -> dict:  # type: ignore[type-arg]
    context = StatusContext(1, 3, ReloadState(True, False, NOW - 600), "/metrics")
    return json.loads(json.dumps(status_document(_snapshot(*pools), context, NOW), allow_nan=False))


def test_conditions_ready_counts_and_worst_first() -> None:
    document = _document(
        _pool("full", "container_group", {"Running": 4, "Creating": 1}, 4),
        _pool("low-cg", "container_group", {"Running": 1, "Creating": 3}, 4),
        _pool("empty", "container_group", {"Running": 0, "Creating": 2}, 4),
        # VM pools: Running, Deallocated and Hibernated all count as ready, as the alerts count them
        _pool("vms", "virtual_machine", {"Running": 1, "Deallocated": 2, "Hibernated": 1, "Deallocating": 3}, 4, vm_state="Deallocated"),
        _pool("no-cap", "container_group", {"Running": 2}, None),
        PoolStatus(PoolRef(SUB, "rg", "waiting")),
        _pool("dynamic", "container_group", {"Running": 1}, 20, dynamic=True),  # follows the forecast far below max: not low
    )
    by_name = {pool["name"]: pool for pool in document["pools"]}
    assert [pool["name"] for pool in document["pools"]] == ["empty", "low-cg", "no-cap", "waiting", "dynamic", "full", "vms"]
    assert {name: pool["condition"] for name, pool in by_name.items()} == {
        "empty": "depleted", "low-cg": "low", "no-cap": "unknown", "waiting": "pending", "full": "fine", "vms": "fine",
        "dynamic": "fine"}
    assert by_name["dynamic"]["dynamic_sizing"] is True and by_name["full"]["dynamic_sizing"] is False
    assert by_name["vms"]["ready"] == 4 and by_name["full"]["ready"] == 4 and by_name["low-cg"]["ready"] == 1
    assert by_name["full"]["members"] == {"ready": 1, "total": 2} and by_name["waiting"]["members"] is None
    assert by_name["full"]["last_success_age_seconds"] == 75 and by_name["waiting"]["last_success_timestamp"] is None
    assert document["summary"] == {"depleted": 1, "low": 1, "unknown": 1, "pending": 1, "fine": 3}


def test_header_fields() -> None:
    document = _document(_pool("full", "container_group", {"Running": 4}, 4))
    assert document["shard"] == {"index": 1, "count": 3} and document["discovered_pools"] == 3
    assert document["reload"] == {"supported": True, "successful": False, "last_success_timestamp": NOW - 600}
    assert document["arm_remaining_reads"] == 120 and document["poll_cycle_duration_seconds"] == 0.25  # the scarcest subscription
    page = landing_page(document)
    assert 'data-fact="shard">1/3<' in page and "FAILED" in page and 'data-fact="remaining">120<' in page


def test_failed_parts_forecast_and_groups_on_the_page() -> None:
    hostile = '<script>alert("x")</script>'
    document = _document(
        _pool("web", "container_group", {"Running": 3}, 4, errors=(PartError(MEMBER_LIST, hostile),), forecast=(1.0, 4.0, 2.0)),
        _pool("other", "container_group", {"Running": 3}, 4, rg="rg-two", sub=OTHER_SUB),
    )
    web = next(pool for pool in document["pools"] if pool["name"] == "web")
    assert web["errors"] == [{"part": "member list", "error": hostile}] and web["forecast"]["instances_requested"] == [1.0, 4.0, 2.0]
    page = landing_page(document)
    assert "<script>alert" not in page and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "<b>member list</b>" in page and 'class="spark"' in page and "1 min ago" in page
    # the subscription appears once per group in the filter (and a short prefix, with several subscriptions), not in full per row
    assert page.count(f">subscription {SUB}<") == 1 and page.count(f"({SUB[:8]})") == 1
    assert f'value="{OTHER_SUB}/rg-two"' in page


@pytest.mark.parametrize(("seconds", "text"), [(None, "never"), (0.4, "0 s ago"), (12.9, "12 s ago"), (60, "1 min ago"),
                                               (7300, "2 h ago"), (2 * 86400 + 5, "2 d ago")])
def test_format_age(seconds: float | None, text: str) -> None:
    assert format_age(seconds) == text


def test_sparkline_scales_into_its_box() -> None:
    points = [tuple(map(float, point.split(","))) for point in sparkline_points([0.0, 5.0, 10.0]).split()]
    assert points == [(0.0, 15.0), (30.0, 8.0), (60.0, 1.0)]
