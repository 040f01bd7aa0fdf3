"""ARM JSON -> model: every api-version's runtime view shape, casing, zones, members."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from exporter import model
from exporter.model import InstanceCount

ARM = Path(__file__).parent.parent / "fixtures" / "arm"


def load(name: str) -> Any:
    return json.loads((ARM / name).read_text())


def counts(view: model.RuntimeView) -> dict[tuple[str, str], int]:
    return {(c.availability_zone, c.state): c.count for c in view.instance_counts}


@pytest.mark.parametrize(
    ("fixture", "expected_counts", "provisioning", "health"),
    [
        ("runtime_view_2024-03-01.json", {("", "Creating"): 0, ("", "Running"): 20, ("", "Deleting"): 0}, "Succeeded", None),
        (
            "runtime_view_2025-03-01_zonal.json",
            {
                ("1", "Creating"): 1, ("1", "Running"): 3, ("1", "Deleting"): 0,
                ("2", "Creating"): 0, ("2", "Running"): 4, ("2", "Deleting"): 2,
                ("3", "Creating"): 0, ("3", "Running"): 0, ("3", "Deleting"): 0,
            },
            "Succeeded",
            "degraded",
        ),
        ("runtime_view_2025-10-01_forecast.json", {("", "Creating"): 2, ("", "Running"): 8, ("", "Deleting"): 1}, "Succeeded", "healthy"),
        (
            "runtime_view_2026-04-01_unknown_states.json",
            {("", "Creating"): 0, ("", "Running"): 6, ("", "Deleting"): 0, ("", "starting"): 2, ("", "Quarantined"): 1},
            "Succeeded",
            "recovering",
        ),
        ("runtime_view_empty.json", {("", "Creating"): 0, ("", "Running"): 0, ("", "Deleting"): 0}, "Succeeded", None),
    ],
)
def test_runtime_view(fixture: str, expected_counts: dict[tuple[str, str], int], provisioning: str, health: str | None) -> None:
    view = model.parse_runtime_view(load(fixture))
    assert counts(view) == expected_counts
    assert view.provisioning_state == provisioning
    assert view.health_state == health


def test_runtime_view_keeps_known_states_first_in_canonical_order() -> None:
    view = model.parse_runtime_view(load("runtime_view_2026-04-01_unknown_states.json"))
    assert [c.state for c in view.instance_counts][:3] == ["Creating", "Running", "Deleting"]


def test_runtime_view_zone_as_string_or_int_is_the_same() -> None:
    body = {"properties": {"instanceCountSummary": [{"zone": "2", "instanceCountsByState": [{"state": "Running", "count": 1}]}]}}
    assert InstanceCount("2", "Running", 1) in model.parse_runtime_view(body).instance_counts


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        {"properties": None},
        {"properties": {"instanceCountSummary": {}}},
        {"properties": {"instanceCountSummary": [{"instanceCountsByState": [{"state": "Running", "count": -1}]}]}},
        {"properties": {"instanceCountSummary": [{"instanceCountsByState": [{"state": "Running", "count": "3"}]}]}},
        {"properties": {"instanceCountSummary": [{"instanceCountsByState": [{"count": 3}]}]}},
        {"properties": {"instanceCountSummary": [{"zone": [1], "instanceCountsByState": []}]}},
        {"properties": {"instanceCountSummary": ["x"]}},
    ],
)
def test_runtime_view_bad_shapes_are_model_errors(body: object) -> None:
    with pytest.raises(model.ModelError):
        model.parse_runtime_view(body)


def test_pool() -> None:
    pool = model.parse_pool(load("pool.json"))
    assert pool == model.Pool(name="myStandbyPool", location="northeurope", provisioning_state="Succeeded", max_ready_capacity=20)


@pytest.mark.parametrize("body", [
    {}, {"name": "p"}, {"name": "p", "properties": {}},
    {"name": "p", "properties": {"provisioningState": "Succeeded", "elasticityProfile": {"maxReadyCapacity": "ten"}}},
])
def test_pool_bad_shapes(body: object) -> None:
    with pytest.raises(model.ModelError):
        model.parse_pool(body)


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("container_group_running.json", model.Member("mystandbypool_0682ad54", "Succeeded", "Running", ready=True)),
        ("container_group_creating.json", model.Member("mystandbypool_1b2c3d4e", "Creating", "Pending", ready=False)),
        ("container_group_sidecar_terminated.json", model.Member("mystandbypool_99aa00bb", "Succeeded", "Running", ready=False)),
        ("container_group_list_item.json", model.Member("mystandbypool_0682ad54", "Succeeded", None, ready=False)),
    ],
)
def test_member(fixture: str, expected: model.Member) -> None:
    assert model.parse_member(load(fixture)) == expected


def test_member_summary_from_list_item() -> None:
    assert model.parse_member_summary(load("container_group_list_item.json")) == model.MemberSummary("mystandbypool_0682ad54", "Succeeded")


def test_member_states_are_canonicalised() -> None:
    body = load("container_group_running.json")
    body["properties"]["provisioningState"] = "succeeded"
    body["properties"]["instanceView"]["state"] = "running"
    body["properties"]["containers"][0]["properties"]["instanceView"]["currentState"]["state"] = "running"
    assert model.parse_member(body) == model.Member("mystandbypool_0682ad54", "Succeeded", "Running", ready=True)


@pytest.mark.parametrize(
    ("container_group", "pool", "member"),
    [
        ("mystandbypool_0682ad54", "myStandbyPool", True),
        ("MyStandbyPool_0682AD54", "mystandbypool", True),
        ("mystandbypool_", "myStandbyPool", False),
        ("mystandbypool", "myStandbyPool", False),
        ("mystandbypool2_0682ad54", "myStandbyPool", False),
        ("other_0682ad54", "myStandbyPool", False),
        ("web-frontend", "web", False),
    ],
)
def test_is_member(container_group: str, pool: str, member: bool) -> None:
    assert model.is_member(container_group, pool) is member


@pytest.mark.parametrize(("value", "expected"), [("running", "Running"), ("RUNNING", "Running"), ("Starting", "Starting"), ("", "")])
def test_canonical(value: str, expected: str) -> None:
    assert model.canonical(value, model.CONTAINER_GROUP_POOL_STATES) == expected


# -- virtual machine pools, forecasts and discovery (every stable api-version's shape) --------------

TEST_VMSS = ("/subscriptions/f8da6e30-a9d8-48ab-b05c-3f7fe482e13b/resourceGroups/test-standbypool/providers/Microsoft.Compute"
             "/virtualMachineScaleSets/test-vmss")
MIX_40_60 = (model.StateShare("Running", 0.4), model.StateShare("Deallocated", 0.6), model.StateShare("Hibernated", 0.0))


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("vm_pool_2024-03-01.json", model.Pool("testPool", "eastus", "Succeeded", 304, None, "Running", "test-vmss", scale_set_id=TEST_VMSS)),
        ("vm_pool_2025-03-01.json", model.Pool("testPool", "eastus", "Succeeded", 304, 300, "Hibernated", "test-vmss", scale_set_id=TEST_VMSS)),
        ("vm_pool_2025-10-01.json", model.Pool("testPool", "eastus", "Succeeded", 20, 5, "Deallocated", "test-vmss", scale_set_id=TEST_VMSS,
                                               post_provisioning_delay_seconds=120.0)),
        ("vm_pool_2026-04-01_mix.json", model.Pool("testPool", "eastus", "Failed", 10, 2, "Mix", "test-vmss", scale_set_id=TEST_VMSS,
                                                   vm_state_distribution=MIX_40_60)),
        ("cg_pool_2025-03-01.json", model.Pool("testCGPool", "westus", "Succeeded", 688, zones=("1", "2", "3"))),
        ("cg_pool_2025-10-01_zonal.json", model.Pool("testCGPool", "eastus", "Succeeded", 688, zones=("1", "2", "3"), dynamic_sizing=True)),
        ("cg_pool_2026-04-01.json", model.Pool("testCGPool", "westus", "Canceled", 0)),
    ],
)
def test_pool_of_every_version_and_kind(fixture: str, expected: model.Pool) -> None:
    assert model.parse_pool(load(fixture)) == expected


def test_vm_runtime_view_lists_every_vm_state() -> None:
    view = model.parse_runtime_view(load("vm_runtime_view_2024-03-01.json"), model.VIRTUAL_MACHINE_POOL_STATES)
    assert counts(view) == {("", state): (1 if state == "Running" else 0) for state in model.VIRTUAL_MACHINE_POOL_STATES}
    assert view.health_state is None and view.forecast is None


def test_vm_runtime_view_2025_10_01_zonal() -> None:
    view = model.parse_runtime_view(load("vm_runtime_view_2025-10-01.json"), model.VIRTUAL_MACHINE_POOL_STATES)
    found = counts(view)
    assert (found[("1", "Running")], found[("1", "Deallocated")], found[("2", "Deallocating")], found[("2", "Running")]) == (2, 3, 1, 0)
    assert len(found) == 16 and view.health_state == "healthy" and view.forecast is None


def test_vm_runtime_view_zonal_lower_case() -> None:
    view = model.parse_runtime_view(load("vm_runtime_view_2025-03-01_zonal.json"), model.VIRTUAL_MACHINE_POOL_STATES)
    found = counts(view)
    assert found[("1", "Hibernated")] == 3 and found[("1", "Hibernating")] == 1 and found[("2", "Hibernated")] == 2
    assert found[("2", "Running")] == 0 and len(found) == 16
    assert view.health_state == "healthy"


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        (
            "runtime_view_2025-10-01_forecast.json",
            model.Forecast((4, 5, 6, 7, 8, 9, 10, 9, 8, 7, 6, 5), 1_795_636_800.0, 3600.0, 0.85, (9, 4, 3)),
        ),
        (
            "vm_runtime_view_2026-04-01_forecast.json",
            model.Forecast((3, 3, 4, 5, 6, 7, 8, 7, 6, 5, 4, 3), 1_775_116_800.123456, 1800.0, 0.9, (2, 3, 4)),
        ),
    ],
)
def test_forecast_in_both_key_styles(fixture: str, expected: model.Forecast) -> None:
    states = model.VIRTUAL_MACHINE_POOL_STATES if fixture.startswith("vm_") else model.CONTAINER_GROUP_POOL_STATES
    forecast = model.parse_runtime_view(load(fixture), states).forecast
    assert forecast is not None
    assert forecast.instances_requested == expected.instances_requested
    assert forecast.start_timestamp == pytest.approx(expected.start_timestamp)
    assert (forecast.interval_seconds, forecast.accuracy_ratio) == (expected.interval_seconds, expected.accuracy_ratio)
    # camelCase: the history is a JSON string inside the forecastInfo JSON string; PascalCase: an array.
    assert forecast.recent_instances_requested == expected.recent_instances_requested


@pytest.mark.parametrize(
    ("prediction", "expected"),
    [
        (None, None),
        ({}, None),
        ({"forecastValues": {"instancesRequestedCount": []}}, None),
        ({"forecastValues": {"instancesRequestedCount": ["a"]}}, None),
        ({"forecastValues": {"instancesRequestedCount": [1, 2]}, "forecastInfo": "{not json", "forecastStartTime": "yesterday"},
         model.Forecast((1, 2), None, None, None)),
        ({"forecastValues": {"instancesRequestedCount": [1]}, "forecastInfo": {"forecastaccuracy": "0.7", "seriesunitintervalinmins": "15"}},
         model.Forecast((1,), None, 900.0, 0.7)),
        ({"forecastValues": {"instancesRequestedCount": list(range(20))}, "forecastInfo": '{"forecastAccuracy": -3}'},
         model.Forecast(tuple(range(12)), None, None, None)),
        ({"forecastValues": {"instancesRequestedCount": [1]}, "forecastInfo": '{"forecastAccuracy": 150}'}, model.Forecast((1,), None, None, None)),
    ],
)
def test_forecast_is_read_leniently(prediction: object, expected: model.Forecast | None) -> None:
    assert model.parse_forecast(prediction) == expected


def _history(value: object, key: str = "instancesRequestedCount_recentHistory") -> tuple[float, ...]:
    forecast = model.parse_forecast({"forecastValues": {"instancesRequestedCount": [1]},
                                     "forecastInfo": json.dumps({key: value})})
    assert forecast is not None and forecast.instances_requested == (1,)
    return forecast.recent_instances_requested


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("[9, 4, 3]", (9, 4, 3)),  # Microsoft's REST examples: a JSON string
        ([9, 4, 3], (9, 4, 3)),  # an array where the examples have a string
        ("[]", ()),
        (list(range(30)), tuple(range(18, 30))),  # the 12 most recent (the end of the array) are kept
        ("[1, 2", ()),  # not JSON
        ('"[1, 2]"', ()),  # a string in a string in a string
        ([1, -2, 3], ()),  # not a count: all or nothing
        ([1, "2"], ()),
        ([1, None], ()),
        ([1, True], ()),
        ({"a": 1}, ()),
        (7, ()),
        ([1.5, 2], (1.5, 2)),
    ],
)
def test_recent_history_is_read_leniently(value: object, expected: tuple[float, ...]) -> None:
    assert _history(value) == expected


def test_recent_history_in_both_key_styles_and_none_without_it() -> None:
    assert _history([5, 6], "InstancesRequestedCountRecentHistory") == (5, 6)
    assert _history("[5, 6]", "instancesrequestedcount_recenthistory") == (5, 6)
    assert _history([5, 6], "somethingElse") == ()


@pytest.mark.parametrize(
    ("elasticity", "expected"),
    [
        ({"maxReadyCapacity": 3, "dynamicSizing": {"enabled": True}}, True),
        ({"maxReadyCapacity": 3, "dynamicSizing": {"enabled": False}}, False),
        ({"maxReadyCapacity": 3}, False),  # api-versions before 2025-10-01
        ({"maxReadyCapacity": 3, "dynamicSizing": {"enabled": "true"}}, False),  # only JSON true is true
        ({"maxReadyCapacity": 3, "dynamicSizing": True}, False),
        ({"maxReadyCapacity": 3, "dynamicSizing": None}, False),
    ],
)
def test_dynamic_sizing_of_both_kinds(elasticity: dict[str, Any], expected: bool) -> None:
    for properties in ({"provisioningState": "Succeeded"},
                       {"provisioningState": "Succeeded", "virtualMachineState": "Deallocated"}):
        body = {"name": "p", "location": "eastus", "properties": {**properties, "elasticityProfile": elasticity}}
        assert model.parse_pool(body).dynamic_sizing is expected


def test_virtual_machine_ref() -> None:
    [item] = load("standby_virtual_machines_page.json")["value"]
    ref = model.parse_virtual_machine_ref(item)
    assert (ref.name, ref.provisioning_state) == ("testPool_vm0", "Succeeded")
    assert ref.resource_id.endswith("/providers/Microsoft.Compute/virtualMachines/testPool_vm0")


@pytest.mark.parametrize(
    "vm_id",
    ["https://evil.example/subscriptions/x", "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/a", "", None],
)
def test_virtual_machine_ref_rejects_what_is_not_a_vm_id(vm_id: object) -> None:
    with pytest.raises(model.ModelError):
        model.parse_virtual_machine_ref({"properties": {"virtualMachineResourceId": vm_id}})


@pytest.mark.parametrize(
    ("fixture", "pool_state", "expected"),
    [
        ("vm_instance_view_seed.json", "Deallocated", model.Member("vm0", "Succeeded", "deallocated", True, in_pool=True)),
        ("vm_instance_view_seed.json", "Running", model.Member("vm0", "Succeeded", "deallocated", False, in_pool=True)),
        ("vm_instance_view_seed.json", "Mix", model.Member("vm0", "Succeeded", "deallocated", True, in_pool=True)),
        ("vm_instance_view_hibernated.json", "Hibernated", model.Member("vm0", "Succeeded", "hibernated", True, in_pool=True)),
        ("vm_instance_view_claimed.json", "Running", model.Member("vm0", "Succeeded", "running", False, in_pool=False)),
        ("vm_instance_view_creating.json", "Running", model.Member("vm0", "Creating", None, False, in_pool=True)),
    ],
)
def test_virtual_machine_readiness(fixture: str, pool_state: str, expected: model.Member) -> None:
    assert model.parse_virtual_machine(load(fixture), "vm0", pool_state) == expected


def test_listed_pool_for_discovery() -> None:
    listed = model.parse_listed_pool(load("pool_list_item_cg.json"))
    assert listed == model.ListedPool("f8da6e30-a9d8-48ab-b05c-3f7fe482e13b", "test-standbypool", "testCGPool", model.PoolKind.CONTAINER_GROUP,
                                      {"team": "web", "env": "1"})


@pytest.mark.parametrize(
    "pool_id",
    [
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm",
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.StandbyPool/standbyVirtualMachinePools",
        "not-an-id",
    ],
)
def test_listed_pool_rejects_other_ids(pool_id: str) -> None:
    with pytest.raises(model.ModelError):
        model.parse_listed_pool({"id": pool_id})


@pytest.mark.parametrize(("item", "name"), [
    ({"id": "/subscriptions/s/resourceGroups/rg/provider/x", "name": "n"}, "/subscriptions/s/resourceGroups/rg/provider/x"),
    ({"name": "web_1"}, "web_1"),
    ({"properties": {}, "type": "t"}, "an item without id or name (keys ['properties', 'type'])"),
    ("text", "a str, not an object"),
    ({"id": "x" * 500}, "x" * 197 + "..."),
])
def test_item_name_says_which_list_item_was_skipped(item: object, name: str) -> None:
    assert model.item_name(item) == name


def test_the_2024_03_01_standby_vm_example_with_its_provider_typo_is_a_model_error() -> None:
    """Microsoft's own example (tests/fixtures/arm/rest_examples): the item is refused, so the poller skips only it."""
    path = Path(__file__).parents[1] / "fixtures" / "arm" / "rest_examples" / "2024-03-01"
    example = json.loads((path / "StandbyVirtualMachines_ListByStandbyVirtualMachinePoolResource.json").read_text())
    [item] = example["responses"]["200"]["body"]["value"]
    with pytest.raises(model.ModelError, match="virtualMachineResourceId"):
        model.parse_virtual_machine_ref(item)


# -- what the pool resource says beyond capacity: zones, postProvisioningDelay, vmStateDistribution --------

EXAMPLES = ARM / "rest_examples"


def example_pools(path: str) -> list[Any]:
    body = json.loads((EXAMPLES / path).read_text(encoding="utf-8"))["responses"]["200"]["body"]
    return list(body["value"]) if "value" in body else [body]


def test_microsofts_mix_pool_example() -> None:
    [pool] = [model.parse_pool(body) for body in example_pools("2026-04-01/StandbyVirtualMachinePools_Get_MixState.json")]
    assert pool.virtual_machine_state == "Mix" and pool.post_provisioning_delay_seconds == 2.0
    assert pool.vm_state_distribution == (model.StateShare("Running", 0.2), model.StateShare("Deallocated", 0.8),
                                          model.StateShare("Hibernated", 0.0))


@pytest.mark.parametrize(("example", "zones", "delay"), [
    ("2024-03-01/StandbyContainerGroupPools_ListByResourceGroup.json", (), None),
    ("2025-10-01/StandbyContainerGroupPools_ListByResourceGroup.json", ("1", "2", "3"), None),
    ("2024-03-01/StandbyVirtualMachinePools_ListBySubscription.json", (), None),
    ("2025-10-01/StandbyVirtualMachinePools_ListByResourceGroup.json", (), 2.0),
    ("2026-04-01/StandbyVirtualMachinePools_ListByResourceGroup.json", (), 2.0),
])
def test_zones_and_post_provisioning_delay_of_microsofts_examples(example: str, zones: tuple[str, ...], delay: float | None) -> None:
    for pool in map(model.parse_pool, example_pools(example)):
        assert (pool.zones, pool.post_provisioning_delay_seconds, pool.vm_state_distribution) == (zones, delay, ())


@pytest.mark.parametrize(("value", "seconds"), [
    ("PT2S", 2.0), ("PT2M", 120.0), ("PT1H30M", 5400.0), ("P1DT2H", 93600.0), ("P1W", 604800.0), ("pt0.5s", 0.5),
    ("P", None), ("PT", None), ("PT2X", None), ("2S", None), ("P1Y", None), ("PT" + "9" * 400 + "S", None), (5, None), (None, None),
])
def test_iso8601_durations(value: object, seconds: float | None) -> None:
    assert model.parse_duration(value) == seconds


@pytest.mark.parametrize(("distribution", "expected"), [
    ({"runningPercent": 100, "deallocatedPercent": 0, "hibernatedPercent": 0}, {"Running": 1.0, "Deallocated": 0.0, "Hibernated": 0.0}),
    ({"RunningPercent": 50}, {"Running": 0.5, "Deallocated": 0.0, "Hibernated": 0.0}),  # absent states read as 0
    ({"stoppedPercent": 10, "runningPercent": 90}, {"Running": 0.9, "Deallocated": 0.0, "Hibernated": 0.0, "stopped": 0.1}),
    ({"runningPercent": "20", "deallocatedPercent": 120, "Percent": 5, "running": 3}, {}),  # nothing readable
    ([{"state": "Running", "count": 4}], {}),  # not the swagger's object
    (None, {}),
])
def test_state_distribution_is_read_leniently(distribution: object, expected: dict[str, float]) -> None:
    body = load("vm_pool_2026-04-01_mix.json")
    body["properties"]["vmStateDistribution"] = distribution
    assert {share.state: share.ratio for share in model.parse_pool(body).vm_state_distribution} == expected


@pytest.mark.parametrize(("zones", "expected"), [
    (["1", "2", "3"], ("1", "2", "3")), ([1, 2], ("1", "2")), ([], ()), ("1,2", ()), ([None, True, "", "3"], ("3",)),
])
def test_zones_are_read_leniently(zones: object, expected: tuple[str, ...]) -> None:
    body = load("cg_pool_2025-03-01.json")
    body["properties"]["zones"] = zones
    assert model.parse_pool(body).zones == expected
