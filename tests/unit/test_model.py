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


@pytest.mark.parametrize("body", [{}, {"name": "p"}, {"name": "p", "properties": {}}, {"name": "p", "properties": {"provisioningState": "Succeeded", "elasticityProfile": {"maxReadyCapacity": "ten"}}}])
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
