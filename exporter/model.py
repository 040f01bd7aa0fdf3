"""Pure functions from ARM JSON to frozen dataclasses. No I/O.

ARM enums are open and Microsoft's own examples mix casing ("running", "Running"), so every state is
compared case-insensitively, published in canonical casing when known, and verbatim when not.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

CONTAINER_GROUP_POOL_STATES = ("Creating", "Running", "Deleting")
VIRTUAL_MACHINE_POOL_STATES = (
    "Running", "Creating", "Starting", "Deleting", "Deallocated", "Deallocating", "Hibernated", "Hibernating",
)
class PoolKind(StrEnum):
    """The two kinds of standby pool; the value is the ``pool_kind`` label and the configuration's ``kind``."""

    CONTAINER_GROUP = "container_group"
    VIRTUAL_MACHINE = "virtual_machine"


POOL_STATES = {PoolKind.CONTAINER_GROUP: CONTAINER_GROUP_POOL_STATES, PoolKind.VIRTUAL_MACHINE: VIRTUAL_MACHINE_POOL_STATES}
POOL_PROVISIONING_STATES = ("Succeeded", "Failed", "Canceled", "Deleting")
HEALTH_STATES = ("healthy", "degraded")
CONTAINER_GROUP_PROVISIONING_STATES = (
    "NotSpecified", "Accepted", "Pending", "Updating", "Creating", "Repairing", "Unhealthy",
    "Failed", "Canceled", "Succeeded", "Deleting", "NotAccessible", "PreProvisioned",
)
CONTAINER_GROUP_STATES = ("Running", "Stopped", "Pending", "Succeeded", "Failed")
VIRTUAL_MACHINE_PROVISIONING_STATES = ("Creating", "Updating", "Succeeded", "Failed", "Deleting", "Migrating")
MEMBER_PROVISIONING_STATES = {
    PoolKind.CONTAINER_GROUP: CONTAINER_GROUP_PROVISIONING_STATES,
    PoolKind.VIRTUAL_MACHINE: VIRTUAL_MACHINE_PROVISIONING_STATES,
}
# The power states a VM may be in while it waits in a pool whose virtualMachineState is the key.
READY_POWER_STATES = {
    "Running": frozenset({"running"}),
    "Deallocated": frozenset({"deallocated"}),
    "Hibernated": frozenset({"hibernated"}),
    "Mix": frozenset({"running", "deallocated", "hibernated"}),
}
VIRTUAL_MACHINE_STATES = tuple(READY_POWER_STATES)
# The states a Mix pool's vmStateDistribution shares out (2026-04-01: runningPercent, deallocatedPercent, ...).
DISTRIBUTED_VM_STATES = ("Running", "Deallocated", "Hibernated")
FORECAST_STEPS = 12
_HEALTH_PREFIX = "healthstate/"


class ModelError(ValueError):
    """An ARM body that does not have the shape the API promises."""


@dataclass(frozen=True)
class InstanceCount:
    availability_zone: str  # "" for a non-zonal summary
    state: str
    count: int


@dataclass(frozen=True)
class Forecast:
    instances_requested: tuple[float, ...]  # one value per forecast interval from the start
    start_timestamp: float | None
    interval_seconds: float | None
    accuracy_ratio: float | None
    # Instances requested per past interval, most recent LAST (forecastInfo's recent history read as the
    # chronological series it is: it ends with the interval right before forecastStartTime); at most
    # FORECAST_STEPS, the most recent kept; empty when forecastInfo has none or it cannot be read.
    recent_instances_requested: tuple[float, ...] = ()


@dataclass(frozen=True)
class RuntimeView:
    instance_counts: tuple[InstanceCount, ...]
    provisioning_state: str | None
    health_state: str | None  # "healthy", "degraded", a new code verbatim, or None without status
    forecast: Forecast | None = None


@dataclass(frozen=True)
class StateShare:
    """One state's share of a Mix pool's ready VMs (``vmStateDistribution``), 0 to 1."""

    state: str
    ratio: float


@dataclass(frozen=True)
class Pool:
    name: str
    location: str
    provisioning_state: str
    max_ready_capacity: int | None
    min_ready_capacity: int | None = None
    virtual_machine_state: str | None = None  # VM pools: Running | Deallocated | Hibernated | Mix
    scale_set: str | None = None  # VM pools: name of the attached scale set
    dynamic_sizing: bool = False  # elasticityProfile.dynamicSizing.enabled (2025-10-01+), False without it
    scale_set_id: str | None = None  # VM pools: attachedVirtualMachineScaleSetId, as given
    zones: tuple[str, ...] = ()  # container group pools: properties.zones (2025-03-01+)
    post_provisioning_delay_seconds: float | None = None  # VM pools: elasticityProfile.postProvisioningDelay
    vm_state_distribution: tuple[StateShare, ...] = ()  # Mix VM pools: vmStateDistribution (2026-04-01)


@dataclass(frozen=True)
class VirtualMachineRef:
    """An item of a VM pool's ``standbyVirtualMachines`` list."""

    name: str
    resource_id: str
    provisioning_state: str


@dataclass(frozen=True)
class MemberSummary:
    """A container group as the resource-group list shows it (no instanceView)."""

    name: str
    provisioning_state: str


@dataclass(frozen=True)
class Member:
    name: str
    provisioning_state: str
    state: str | None  # container groups: instanceView.state; VMs: the power state
    ready: bool
    in_pool: bool | None = None  # VMs: isVMInStandbyPool


@dataclass(frozen=True)
class ListedPool:
    """A pool as a subscription's pool list shows it (for discovery)."""

    subscription_id: str
    resource_group: str
    name: str
    kind: PoolKind
    tags: dict[str, str]


def _text(value: str) -> str:
    """Text kept for publishing must be valid Unicode: JSON's lone surrogate escapes (``\\ud800``) are not."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ModelError("text is not valid Unicode (lone surrogate)") from None
    return value


def canonical(value: str, known: Iterable[str]) -> str:
    """``value`` in the casing of the matching known name, else verbatim."""
    folded = value.casefold()
    for name in known:
        if name.casefold() == folded:
            return name
    return _text(value)


def _mapping(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ModelError(f"{what} must be an object, got {type(value).__name__}")
    return value


def _optional_mapping(value: object, what: str) -> Mapping[str, Any]:
    return {} if value is None else _mapping(value, what)


def _string(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ModelError(f"{what} must be a non-empty string")
    return _text(value)


MAX_COUNT = 2**53  # beyond this a count is not exact as a float sample, and no pool is that large


def _count(value: object, what: str) -> int:
    if (
        isinstance(value, bool) or not isinstance(value, (int, float))
        or not 0 <= value <= MAX_COUNT or value != int(value)
    ):
        raise ModelError(f"{what} must be a non-negative integer up to 2^53, got {_short(value)}")
    return int(value)


def _short(value: object, limit: int = 40) -> str:
    text = value if isinstance(value, str) and limit > 40 else repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _zone(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ModelError(f"instanceCountSummary zone must be an integer or string, got {value!r}")
    return _text(str(value))


def item_name(body: object) -> str:
    """How a log line names a list item: its ``id``, else its ``name``, else its position-free shape."""
    if isinstance(body, Mapping):
        for key in ("id", "name"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return _short(value, 200)
        return f"an item without id or name (keys {_short(sorted(str(k) for k in body), 200)})"
    return f"a {type(body).__name__}, not an object"


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
        forecast=parse_forecast(properties.get("prediction")),
    )


def parse_forecast(prediction: object) -> Forecast | None:
    """``prediction`` of a runtime view, read leniently: whatever cannot be read is None, never an error.

    ``forecastInfo`` is a JSON string whose key names differ between sources
    (``forecastAccuracy`` / ``ForecastAccuracy``, ``seriesUnitIntervalInMins`` / ``SeriesUnitIntervalInMins``,
    ``instancesRequestedCount_recentHistory`` holding the history as a JSON string in Microsoft's REST
    examples / ``InstancesRequestedCountRecentHistory`` holding an array in Microsoft's prediction article).
    """
    if not isinstance(prediction, Mapping):
        return None
    values = _lower_keys(prediction.get("forecastValues")).get("instancesrequestedcount")
    if not isinstance(values, list) or not values:
        return None
    numbers = [_number(v) for v in values[:FORECAST_STEPS] if not isinstance(v, str)]
    if len(numbers) != min(len(values), FORECAST_STEPS) or any(n is None or abs(n) > MAX_COUNT for n in numbers):
        return None
    requested = tuple(n for n in numbers if n is not None)
    info = prediction.get("forecastInfo")
    if isinstance(info, str):
        try:
            info = json.loads(info)
        except ValueError:
            info = None
    info = _lower_keys(info)
    interval = _number(info.get("seriesunitintervalinmins"))
    accuracy = _number(info.get("forecastaccuracy"))
    return Forecast(
        instances_requested=requested,
        start_timestamp=_timestamp(prediction.get("forecastStartTime")),
        interval_seconds=interval * 60 if interval is not None and interval > 0 else None,
        accuracy_ratio=None if accuracy is None or not 0 <= accuracy <= 100 else (accuracy / 100 if accuracy > 1 else accuracy),
        recent_instances_requested=_recent_history(info),
    )


_HISTORY_KEYS = ("instancesrequestedcount_recenthistory", "instancesrequestedcountrecenthistory")


def _recent_history(info: Mapping[str, Any]) -> tuple[float, ...]:
    """The recent demand of a (lower-cased) forecastInfo: an array, or an array inside a JSON string.

    Leniently all or nothing: anything but a list of non-negative counts up to 2^53 gives ().
    """
    history = next((info[key] for key in _HISTORY_KEYS if key in info), None)
    if isinstance(history, str):
        try:
            history = json.loads(history)
        except ValueError:
            return ()
    if not isinstance(history, list):
        return ()
    numbers = [None if isinstance(v, str) else _number(v) for v in history]
    if any(n is None or not 0 <= n <= MAX_COUNT for n in numbers):
        return ()
    return tuple(n for n in numbers if n is not None)[-FORECAST_STEPS:]


def _lower_keys(value: object) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in value.items()} if isinstance(value, Mapping) else {}


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:  # an integer beyond float range
            return None
        return number if math.isfinite(number) else None
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


_FRACTION = re.compile(r"(\.\d{6})\d+")


def _timestamp(value: object) -> float | None:
    """RFC 3339 (as ARM writes it, up to 7 fraction digits, ``Z`` or an offset) -> Unix seconds."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(_FRACTION.sub(r"\1", value.strip()).replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def _health_state(status: object) -> str | None:
    if not isinstance(status, Mapping) or not isinstance(status.get("code"), str) or not status["code"]:
        return None
    code: str = status["code"]
    name = code[len(_HEALTH_PREFIX):] if code.casefold().startswith(_HEALTH_PREFIX) else code
    return canonical(name, HEALTH_STATES)


def parse_pool(body: object) -> Pool:
    """A ``standbyContainerGroupPools/{pool}`` or ``standbyVirtualMachinePools/{pool}`` resource."""
    resource = _mapping(body, "pool")
    properties = _mapping(resource.get("properties"), "pool properties")
    elasticity = _optional_mapping(properties.get("elasticityProfile"), "elasticityProfile")
    maximum, minimum = elasticity.get("maxReadyCapacity"), elasticity.get("minReadyCapacity")
    vm_state = properties.get("virtualMachineState")
    scale_set = properties.get("attachedVirtualMachineScaleSetId")
    return Pool(
        name=_string(resource.get("name"), "pool name"),
        location=_text(resource["location"]) if isinstance(resource.get("location"), str) else "",
        provisioning_state=canonical(_string(properties.get("provisioningState"), "provisioningState"), POOL_PROVISIONING_STATES),
        max_ready_capacity=None if maximum is None else _count(maximum, "maxReadyCapacity"),
        min_ready_capacity=None if minimum is None else _count(minimum, "minReadyCapacity"),
        virtual_machine_state=canonical(vm_state, VIRTUAL_MACHINE_STATES) if isinstance(vm_state, str) and vm_state else None,
        scale_set=_text(scale_set.rstrip("/").rsplit("/", 1)[-1]) if isinstance(scale_set, str) and scale_set else None,
        scale_set_id=_text(scale_set.rstrip("/")) if isinstance(scale_set, str) and _RESOURCE_ID.match(scale_set) else None,
        zones=_zones(properties.get("zones")),
        post_provisioning_delay_seconds=parse_duration(elasticity.get("postProvisioningDelay")),
        vm_state_distribution=_state_distribution(properties.get("vmStateDistribution")),
        dynamic_sizing=_dynamic_sizing(elasticity.get("dynamicSizing")),
    )



def _dynamic_sizing(value: object) -> bool:
    """``elasticityProfile.dynamicSizing.enabled`` is true; absent (before 2025-10-01) or unreadable: False."""
    return isinstance(value, Mapping) and value.get("enabled") is True


def _zones(value: object) -> tuple[str, ...]:
    """``properties.zones`` (``["1", "2", "3"]``); anything but a list of strings or integers reads as no zones."""
    if not isinstance(value, list):
        return ()
    return tuple(_text(str(zone)) for zone in value if isinstance(zone, (str, int)) and not isinstance(zone, bool) and str(zone))


_DURATION = re.compile(
    r"^P(?!$)(?:(?P<weeks>\d+(?:\.\d+)?)W)?(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$",
    re.IGNORECASE,
)
_DURATION_SECONDS = {"weeks": 604800.0, "days": 86400.0, "hours": 3600.0, "minutes": 60.0, "seconds": 1.0}


def parse_duration(value: object) -> float | None:
    """An ISO 8601 duration without years or months (``PT2S``, ``PT1H30M``, ``P1D``) -> seconds; else None."""
    if not isinstance(value, str):
        return None
    match = _DURATION.match(value.strip())
    if match is None:
        return None
    seconds = sum(float(amount) * _DURATION_SECONDS[unit] for unit, amount in match.groupdict().items() if amount)
    return seconds if math.isfinite(seconds) else None


_PERCENT_SUFFIX = "percent"


def _state_distribution(value: object) -> tuple[StateShare, ...]:
    """``vmStateDistribution`` (``{"runningPercent": 20, "deallocatedPercent": 80, "hibernatedPercent": 0}``) ->
    shares 0..1, every known state present; keys or values that cannot be read are left out."""
    if not isinstance(value, Mapping):
        return ()
    shares: dict[str, float] = {}
    for key, percent in value.items():
        number = _number(percent) if not isinstance(percent, str) else None
        if (not isinstance(key, str) or not key.casefold().endswith(_PERCENT_SUFFIX) or len(key) == len(_PERCENT_SUFFIX)
                or number is None or not 0 <= number <= 100):
            continue
        shares[canonical(key[: -len(_PERCENT_SUFFIX)], DISTRIBUTED_VM_STATES)] = number / 100
    if not shares:
        return ()
    return tuple(StateShare(state, shares.get(state, 0.0)) for state in dict.fromkeys((*DISTRIBUTED_VM_STATES, *shares)))


_RESOURCE_ID = re.compile(r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/[^?#]+$", re.IGNORECASE)
_POOL_PROVIDERS = {
    "microsoft.standbypool/standbycontainergrouppools": PoolKind.CONTAINER_GROUP,
    "microsoft.standbypool/standbyvirtualmachinepools": PoolKind.VIRTUAL_MACHINE,
}


def parse_listed_pool(body: object) -> ListedPool:
    """An item of a subscription's standby pool list: where it lives, its kind and its tags."""
    resource = _mapping(body, "pool")
    resource_id = _string(resource.get("id"), "pool id")
    parts = resource_id.strip("/").split("/")
    if len(parts) != 8 or not _RESOURCE_ID.match(resource_id):
        raise ModelError(f"pool id is not a standby pool resource id: {resource_id!r}")
    kind = _POOL_PROVIDERS.get(f"{parts[5]}/{parts[6]}".lower())
    if kind is None:
        raise ModelError(f"pool id is not a standby pool resource id: {resource_id!r}")
    raw_tags = resource.get("tags")
    tags: Mapping[object, object] = raw_tags if isinstance(raw_tags, Mapping) else {}
    return ListedPool(parts[1].lower(), parts[3], parts[7], kind, {str(k): str(v) for k, v in tags.items()})


def parse_virtual_machine_ref(body: object) -> VirtualMachineRef:
    """An item of ``standbyVirtualMachines``: the VM's resource id is ``properties.virtualMachineResourceId``."""
    resource = _mapping(body, "standby virtual machine")
    properties = _optional_mapping(resource.get("properties"), "standby virtual machine properties")
    vm_id = _string(properties.get("virtualMachineResourceId"), "virtualMachineResourceId")
    if (not _RESOURCE_ID.match(vm_id) or "/providers/microsoft.compute/virtualmachines/" not in vm_id.lower()
            or any(part in (".", "..") for part in vm_id.split("/"))):
        raise ModelError(f"virtualMachineResourceId is not a virtual machine resource id: {vm_id!r}")
    state = properties.get("provisioningState")
    return VirtualMachineRef(
        name=vm_id.rstrip("/").rsplit("/", 1)[-1],
        resource_id=vm_id.rstrip("/"),
        provisioning_state=canonical(state, VIRTUAL_MACHINE_PROVISIONING_STATES) if isinstance(state, str) and state else "NotSpecified",
    )


def parse_scale_set_vm(body: object) -> tuple[str, Mapping[str, Any] | None]:
    """An item of the scale set's VM list (``$expand=instanceView``): (lower-cased resource id, its instance view when it
    has what a member needs: ``isVMInStandbyPool`` and statuses; else None)."""
    resource = _mapping(body, "virtual machine")
    vm_id = _string(resource.get("id"), "virtual machine id").rstrip("/").lower()
    properties = _optional_mapping(resource.get("properties"), "virtual machine properties")
    view = properties.get("instanceView")
    usable = (isinstance(view, Mapping) and isinstance(view.get("isVMInStandbyPool"), bool)
              and isinstance(view.get("statuses"), list) and bool(view["statuses"]))
    return vm_id, view if usable else None


def parse_virtual_machine(body: object, name: str, pool_vm_state: str | None) -> Member:
    """A VM's ``instanceView``. Ready: in the pool, provisioning succeeded, power state the one the pool keeps."""
    view = _mapping(body, "virtual machine instanceView")
    statuses = view.get("statuses") or []
    if not isinstance(statuses, list):
        raise ModelError("instanceView statuses must be a list")
    codes: list[str] = [status["code"] for status in statuses if isinstance(status, Mapping) and isinstance(status.get("code"), str)]
    provisioning = next((code.split("/", 1)[1] for code in codes if code.lower().startswith("provisioningstate/")), "NotSpecified")
    power = next((_text(code.split("/", 1)[1].lower()) for code in codes if code.lower().startswith("powerstate/")), None)
    if any(code.lower() == "hibernationstate/hibernated" for code in codes):
        power = "hibernated"  # Azure reports a hibernated VM as PowerState/deallocated plus HibernationState/Hibernated
    provisioning = canonical(provisioning, VIRTUAL_MACHINE_PROVISIONING_STATES)
    in_pool = view.get("isVMInStandbyPool")
    in_pool = in_pool if isinstance(in_pool, bool) else None
    wanted = READY_POWER_STATES.get(pool_vm_state or "", READY_POWER_STATES["Mix"])
    ready = in_pool is True and provisioning == "Succeeded" and power in wanted
    return Member(name=name, provisioning_state=provisioning, state=power, ready=ready, in_pool=in_pool)


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
    nested = container.get("properties")
    properties: Mapping[str, Any] = nested if isinstance(nested, Mapping) else container
    view = properties.get("instanceView")
    current = view.get("currentState") if isinstance(view, Mapping) else None
    state = current.get("state") if isinstance(current, Mapping) else None
    return isinstance(state, str) and state.casefold() == "running"
