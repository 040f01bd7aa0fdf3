"""Pure functions from ARM JSON to frozen dataclasses. No I/O.

ARM enums are open and Microsoft's own examples mix casing ("running", "Running"), so every state is
compared case-insensitively, published in canonical casing when known, and verbatim when not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

CONTAINER_GROUP_POOL_STATES = ("Creating", "Running", "Deleting")
POOL_PROVISIONING_STATES = ("Succeeded", "Failed", "Canceled", "Deleting")
HEALTH_STATES = ("healthy", "degraded")
CONTAINER_GROUP_PROVISIONING_STATES = (
    "NotSpecified", "Accepted", "Pending", "Updating", "Creating", "Repairing", "Unhealthy",
    "Failed", "Canceled", "Succeeded", "Deleting", "NotAccessible", "PreProvisioned",
)
CONTAINER_GROUP_STATES = ("Running", "Stopped", "Pending", "Succeeded", "Failed")
_HEALTH_PREFIX = "healthstate/"


class ModelError(ValueError):
    """An ARM body that does not have the shape the API promises."""


@dataclass(frozen=True)
class InstanceCount:
    availability_zone: str  # "" for a non-zonal summary
    state: str
    count: int


@dataclass(frozen=True)
class RuntimeView:
    instance_counts: tuple[InstanceCount, ...]
    provisioning_state: str | None
    health_state: str | None  # "healthy", "degraded", a new code verbatim, or None without status


@dataclass(frozen=True)
class Pool:
    name: str
    location: str
    provisioning_state: str
    max_ready_capacity: int | None


@dataclass(frozen=True)
class MemberSummary:
    """A container group as the resource-group list shows it (no instanceView)."""

    name: str
    provisioning_state: str


@dataclass(frozen=True)
class Member:
    name: str
    provisioning_state: str
    state: str | None  # instanceView.state
    ready: bool


def canonical(value: str, known: Iterable[str]) -> str:
    """``value`` in the casing of the matching known name, else verbatim."""
    folded = value.casefold()
    for name in known:
        if name.casefold() == folded:
            return name
    return value


def _mapping(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ModelError(f"{what} must be an object, got {type(value).__name__}")
    return value


def _optional_mapping(value: object, what: str) -> Mapping[str, Any]:
    return {} if value is None else _mapping(value, what)


def _string(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ModelError(f"{what} must be a non-empty string")
    return value


def _count(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or value != int(value):
        raise ModelError(f"{what} must be a non-negative integer, got {value!r}")
    return int(value)


def _zone(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ModelError(f"instanceCountSummary zone must be an integer or string, got {value!r}")
    return str(value)


def parse_runtime_view(body: object, known_states: tuple[str, ...] = CONTAINER_GROUP_POOL_STATES) -> RuntimeView:
    """``runtimeViews/latest`` -> counts per (zone, state), every known state present (0 when absent)."""
    properties = _mapping(_mapping(body, "runtime view").get("properties"), "runtime view properties")
    summaries = properties.get("instanceCountSummary")
    summaries = [] if summaries is None else summaries
    if not isinstance(summaries, list):
        raise ModelError("instanceCountSummary must be a list")
    counts: dict[tuple[str, str], int] = {}
    for index, raw_summary in enumerate(summaries):
        summary = _mapping(raw_summary, f"instanceCountSummary[{index}]")
        zone = _zone(summary.get("zone"))
        for state in known_states:
            counts.setdefault((zone, state), 0)
        by_state = summary.get("instanceCountsByState")
        by_state = [] if by_state is None else by_state
        if not isinstance(by_state, list):
            raise ModelError(f"instanceCountSummary[{index}].instanceCountsByState must be a list")
        for raw_entry in by_state:
            entry = _mapping(raw_entry, "instanceCountsByState entry")
            state = canonical(_string(entry.get("state"), "instanceCountsByState state"), known_states)
            counts[(zone, state)] = counts.get((zone, state), 0) + _count(entry.get("count"), f"count of {state}")
    if not counts:
        counts = {("", state): 0 for state in known_states}
    provisioning = properties.get("provisioningState")
    return RuntimeView(
        instance_counts=tuple(InstanceCount(zone, state, count) for (zone, state), count in counts.items()),
        provisioning_state=canonical(provisioning, POOL_PROVISIONING_STATES) if isinstance(provisioning, str) else None,
        health_state=_health_state(properties.get("status")),
    )


def _health_state(status: object) -> str | None:
    if not isinstance(status, Mapping) or not isinstance(status.get("code"), str) or not status["code"]:
        return None
    code: str = status["code"]
    name = code[len(_HEALTH_PREFIX):] if code.casefold().startswith(_HEALTH_PREFIX) else code
    return canonical(name, HEALTH_STATES)


def parse_pool(body: object) -> Pool:
    """A ``standbyContainerGroupPools/{pool}`` resource."""
    resource = _mapping(body, "pool")
    properties = _mapping(resource.get("properties"), "pool properties")
    elasticity = _optional_mapping(properties.get("elasticityProfile"), "elasticityProfile")
    capacity = elasticity.get("maxReadyCapacity")
    return Pool(
        name=_string(resource.get("name"), "pool name"),
        location=resource.get("location") if isinstance(resource.get("location"), str) else "",
        provisioning_state=canonical(_string(properties.get("provisioningState"), "provisioningState"), POOL_PROVISIONING_STATES),
        max_ready_capacity=None if capacity is None else _count(capacity, "maxReadyCapacity"),
    )


def is_member(container_group_name: str, pool_name: str) -> bool:
    """Standby container groups are named ``<pool name lower-cased>_<suffix>`` (a convention, not a contract)."""
    prefix = pool_name.casefold() + "_"
    name = container_group_name.casefold()
    return name.startswith(prefix) and len(name) > len(prefix)


def parse_member_summary(body: object) -> MemberSummary:
    """An item of the resource group's container group list."""
    resource = _mapping(body, "container group")
    properties = _optional_mapping(resource.get("properties"), "container group properties")
    state = properties.get("provisioningState")
    return MemberSummary(
        name=_string(resource.get("name"), "container group name"),
        provisioning_state=canonical(state, CONTAINER_GROUP_PROVISIONING_STATES) if isinstance(state, str) and state else "NotSpecified",
    )


def parse_member(body: object) -> Member:
    """A container group with its instanceView. Ready: Succeeded, Running, and every container Running."""
    summary = parse_member_summary(body)
    properties = _optional_mapping(_mapping(body, "container group").get("properties"), "container group properties")
    view = _optional_mapping(properties.get("instanceView"), "instanceView")
    raw_state = view.get("state")
    state = canonical(raw_state, CONTAINER_GROUP_STATES) if isinstance(raw_state, str) and raw_state else None
    containers = properties.get("containers") or []
    if not isinstance(containers, list):
        raise ModelError("containers must be a list")
    containers_running = bool(containers) and all(_container_running(container) for container in containers)
    ready = summary.provisioning_state == "Succeeded" and state == "Running" and containers_running
    return Member(name=summary.name, provisioning_state=summary.provisioning_state, state=state, ready=ready)


def _container_running(container: object) -> bool:
    if not isinstance(container, Mapping):
        return False
    properties = container.get("properties") if isinstance(container.get("properties"), Mapping) else container
    view = properties.get("instanceView")
    current = view.get("currentState") if isinstance(view, Mapping) else None
    state = current.get("state") if isinstance(current, Mapping) else None
    return isinstance(state, str) and state.casefold() == "running"
