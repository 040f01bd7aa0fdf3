"""Snapshot -> Prometheus metric families. Pure: no I/O, no ARM calls at scrape time.

Each family has its own generator function taking a :class:`~exporter.poller.Snapshot`. Sample output::

    # HELP azure_standby_pool_instances Instances in the standby pool by state, from the runtime view. Cached: ...
    # TYPE azure_standby_pool_instances gauge
    azure_standby_pool_instances{subscription_id="0000...",resource_group="rg",pool="web",pool_kind="container_group",availability_zone="",state="Running"} 20.0
"""

from __future__ import annotations

import gzip
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.registry import Collector

from . import __version__, model
from .poller import PoolData, PoolStatus, Snapshot

PREFIX = "azure_standby_pool_"
POOL_LABELS = ("subscription_id", "resource_group", "pool", "pool_kind")


def _cached(help_text: str, snapshot: Snapshot) -> str:
    return f"{help_text} Cached: refreshed every {snapshot.interval:g}s by a background poll of Azure Resource Manager."


def _pool_values(status: PoolStatus) -> list[str]:
    ref = status.ref
    return [ref.subscription_id, ref.resource_group, ref.name, ref.kind]


def _gauge(snapshot: Snapshot, name: str, help_text: str, extra_labels: tuple[str, ...] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, _cached(help_text, snapshot), labels=[*POOL_LABELS, *extra_labels])


def _with_data(snapshot: Snapshot) -> Iterator[tuple[PoolStatus, PoolData]]:
    for status in snapshot.pools:
        if status.data is not None:
            yield status, status.data


def _per_pool(snapshot: Snapshot, name: str, help_text: str, value_of: Callable[[PoolData], float | None]) -> Metric:
    """One optional value per pool with data: a series only where ``value_of`` gives a number."""
    family = _gauge(snapshot, name, help_text)
    for status, data in _with_data(snapshot):
        value = value_of(data)
        if value is not None:
            family.add_metric(_pool_values(status), value)
    return family


def _forecast_field(data: PoolData, field_name: str) -> float | None:
    forecast = data.runtime.forecast
    return None if forecast is None else getattr(forecast, field_name)


def instances(snapshot: Snapshot) -> Metric:
    family = _gauge(snapshot, "instances", "Instances in the standby pool by state, from the runtime view.", ("availability_zone", "state"))
    for status, data in _with_data(snapshot):
        for entry in data.runtime.instance_counts:
            family.add_metric([*_pool_values(status), entry.availability_zone, entry.state], entry.count)
    return family


def max_ready_capacity(snapshot: Snapshot) -> Metric:
    return _per_pool(snapshot, "max_ready_capacity", "Maximum ready capacity of the pool (elasticityProfile.maxReadyCapacity).",
                     lambda data: data.pool.max_ready_capacity)


def min_ready_capacity(snapshot: Snapshot) -> Metric:
    return _per_pool(snapshot, "min_ready_capacity",
                     "Minimum ready capacity of a virtual machine pool (elasticityProfile.minReadyCapacity), when set.",
                     lambda data: data.pool.min_ready_capacity)


def _one_hot(family: GaugeMetricFamily, labels: list[str], current: str, known: tuple[str, ...]) -> None:
    for state in dict.fromkeys((*known, current)):
        family.add_metric([*labels, state], 1.0 if state == current else 0.0)


def provisioning_state(snapshot: Snapshot) -> Metric:
    family = _gauge(snapshot, "provisioning_state", "1 for the pool's provisioningState, 0 for the other known states.", ("state",))
    for status, data in _with_data(snapshot):
        _one_hot(family, _pool_values(status), data.pool.provisioning_state, model.POOL_PROVISIONING_STATES)
    return family


def health_state(snapshot: Snapshot) -> Metric:
    family = _gauge(snapshot, "health_state", "1 for the pool's health state from the runtime view status, 0 for the other known states.", ("state",))
    for status, data in _with_data(snapshot):
        if data.runtime.health_state is not None:
            _one_hot(family, _pool_values(status), data.runtime.health_state, model.HEALTH_STATES)
    return family


def info(snapshot: Snapshot) -> Metric:
    family = _gauge(
        snapshot, "info",
        "Standby pool metadata; always 1. VM pools also name the kept VM state and the attached scale set; "
        "zones lists a container group pool's availability zones (\"1,2,3\", empty when none).",
        ("location", "virtual_machine_state", "scale_set", "zones"),
    )
    for status, data in _with_data(snapshot):
        pool = data.pool
        family.add_metric([*_pool_values(status), pool.location, pool.virtual_machine_state or "", pool.scale_set or "",
                           ",".join(pool.zones)], 1.0)
    return family


def vm_state_distribution_ratio(snapshot: Snapshot) -> Metric:
    family = _gauge(
        snapshot, "vm_state_distribution_ratio",
        "Share of a Mix virtual machine pool's ready VMs kept in each state (vmStateDistribution), 0 to 1.", ("state",),
    )
    for status, data in _with_data(snapshot):
        for share in data.pool.vm_state_distribution:
            family.add_metric([*_pool_values(status), share.state], share.ratio)
    return family


def post_provisioning_delay_seconds(snapshot: Snapshot) -> Metric:
    return _per_pool(
        snapshot, "post_provisioning_delay_seconds",
        "Time a new VM waits after provisioning before it counts as available (elasticityProfile.postProvisioningDelay), when set.",
        lambda data: data.pool.post_provisioning_delay_seconds,
    )


def members(snapshot: Snapshot) -> Metric:
    family = _gauge(snapshot, "members", "Members of the pool (container groups or VMs) by provisioning state.", ("provisioning_state",))
    for status, data in _with_data(snapshot):
        counts = Counter(member.provisioning_state for member in data.members)
        for state in dict.fromkeys((*model.MEMBER_PROVISIONING_STATES[status.ref.kind], *sorted(counts))):
            family.add_metric([*_pool_values(status), state], counts.get(state, 0))
    return family


def members_ready(snapshot: Snapshot) -> Metric:
    return _per_pool(
        snapshot, "members_ready",
        "Members that are ready. Container groups: provisioningState Succeeded, state Running, every container Running. "
        "VMs: in the pool, provisioning succeeded, power state the one the pool keeps.",
        lambda data: sum(member.ready for member in data.members),
    )


def member_ready(snapshot: Snapshot) -> Metric:
    family = _gauge(snapshot, "member_ready", "1 when the member (container group or VM) is ready, else 0.", ("member",))
    for status, data in _with_data(snapshot):
        for member in data.members:
            family.add_metric([*_pool_values(status), member.name], 1.0 if member.ready else 0.0)
    return family


def member_in_pool(snapshot: Snapshot) -> Metric:
    family = _gauge(snapshot, "member_in_pool", "1 while the VM waits in the standby pool (isVMInStandbyPool), 0 once handed out.", ("member",))
    for status, data in _with_data(snapshot):
        for member in data.members:
            if member.in_pool is not None:
                family.add_metric([*_pool_values(status), member.name], 1.0 if member.in_pool else 0.0)
    return family


def _forecasts(snapshot: Snapshot) -> Iterator[tuple[PoolStatus, model.Forecast]]:
    for status, data in _with_data(snapshot):
        if data.runtime.forecast is not None:
            yield status, data.runtime.forecast


def forecast_instances_requested(snapshot: Snapshot) -> Metric:
    family = _gauge(
        snapshot, "forecast_instances_requested",
        "Azure's forecast of instances requested, per forecast interval (step 0 starts at the forecast start).", ("step",),
    )
    for status, forecast in _forecasts(snapshot):
        for step, value in enumerate(forecast.instances_requested):
            family.add_metric([*_pool_values(status), str(step)], value)
    return family


def forecast_start_timestamp_seconds(snapshot: Snapshot) -> Metric:
    return _per_pool(snapshot, "forecast_start_timestamp_seconds", "Unix time at which the forecast's step 0 starts.",
                     lambda data: _forecast_field(data, "start_timestamp"))


def forecast_interval_seconds(snapshot: Snapshot) -> Metric:
    return _per_pool(snapshot, "forecast_interval_seconds", "Length of one forecast step.",
                     lambda data: _forecast_field(data, "interval_seconds"))


def forecast_accuracy_ratio(snapshot: Snapshot) -> Metric:
    return _per_pool(snapshot, "forecast_accuracy_ratio", "Accuracy Azure reports for its forecast, 0 to 1.",
                     lambda data: _forecast_field(data, "accuracy_ratio"))


def up(snapshot: Snapshot) -> Metric:
    family = _gauge(snapshot, "up", "1 when the last poll of the pool succeeded, else 0.")
    for status in snapshot.pools:
        if status.polled:
            family.add_metric(_pool_values(status), 1.0 if status.up else 0.0)
    return family


def last_success_timestamp_seconds(snapshot: Snapshot) -> Metric:
    family = _gauge(snapshot, "last_success_timestamp_seconds", "Unix time of the last successful poll of the pool.")
    for status in snapshot.pools:
        if status.last_success is not None:
            family.add_metric(_pool_values(status), status.last_success)
    return family


def poll_duration_seconds(snapshot: Snapshot) -> Metric:
    family = _gauge(snapshot, "poll_duration_seconds", "Duration of the pool's last poll.")
    for status in snapshot.pools:
        if status.data is not None and status.poll_duration is not None:
            family.add_metric(_pool_values(status), status.poll_duration)
    return family


def arm_requests(snapshot: Snapshot) -> Metric:
    family = CounterMetricFamily(
        PREFIX + "arm_requests",
        _cached("ARM requests by HTTP status code (code=\"error\" when no response came).", snapshot),
        labels=["subscription_id", "operation", "code"],
    )
    for (subscription_id, operation, code), count in sorted(snapshot.arm.requests.items()):
        family.add_metric([subscription_id, operation, code], count)
    return family


def arm_ratelimit_remaining_reads(snapshot: Snapshot) -> Metric:
    family = GaugeMetricFamily(
        PREFIX + "arm_ratelimit_remaining_reads",
        _cached("Last x-ms-ratelimit-remaining-subscription-reads header seen from ARM.", snapshot),
        labels=["subscription_id"],
    )
    for subscription_id, remaining in sorted(snapshot.arm.remaining_reads.items()):
        family.add_metric([subscription_id], remaining)
    return family


def _per_subscription_counter(snapshot: Snapshot, name: str, help_text: str, values: dict[str, float]) -> Metric:
    family = CounterMetricFamily(PREFIX + name, _cached(help_text, snapshot), labels=["subscription_id"])
    for subscription_id, value in sorted(values.items()):
        family.add_metric([subscription_id], value)
    return family


def arm_throttled(snapshot: Snapshot) -> Metric:
    return _per_subscription_counter(
        snapshot, "arm_throttled", "ARM 429 answers that paused every read of the subscription until Retry-After passed.",
        {sub: float(count) for sub, count in snapshot.arm.throttled.items()},
    )


def arm_budget_wait_seconds(snapshot: Snapshot) -> Metric:
    return _per_subscription_counter(
        snapshot, "arm_budget_wait_seconds", "Time reads waited for the client-side read budget or a Retry-After pause.",
        snapshot.arm.budget_wait_seconds,
    )


def arm_next_links_refused(snapshot: Snapshot) -> Metric:
    return _per_subscription_counter(
        snapshot, "arm_next_links_refused", "Paging nextLinks refused because they pointed off the ARM endpoint (the token never goes there).",
        {sub: float(count) for sub, count in snapshot.arm.next_links_refused.items()},
    )


def discovered_pools(snapshot: Snapshot) -> Metric:
    family = GaugeMetricFamily(
        PREFIX + "discovered_pools", _cached("Standby pools found by discovery and passing its filters.", snapshot),
        labels=["subscription_id", "pool_kind"],
    )
    for (subscription_id, kind), count in sorted(snapshot.discovered.items()):
        family.add_metric([subscription_id, kind], count)
    return family


def poll_cycle_duration_seconds(snapshot: Snapshot) -> Metric:
    family = GaugeMetricFamily(PREFIX + "poll_cycle_duration_seconds", _cached("Wall time of the last complete poll cycle over every pool.", snapshot))
    if snapshot.cycle_duration is not None:
        family.add_metric([], snapshot.cycle_duration)
    return family


def poll_cycles_skipped(snapshot: Snapshot) -> Metric:
    family = CounterMetricFamily(
        PREFIX + "poll_cycles_skipped",
        _cached("Poll cycles skipped because the previous cycle was still running.", snapshot),
    )
    family.add_metric([], snapshot.cycles_skipped)
    return family


def exporter_build_info(snapshot: Snapshot) -> Metric:
    family = GaugeMetricFamily(PREFIX + "exporter_build_info", "Exporter build information; always 1.", labels=["version"])
    family.add_metric([__version__], 1.0)
    return family


FAMILIES: tuple[Callable[[Snapshot], Metric], ...] = (
    instances, max_ready_capacity, min_ready_capacity, provisioning_state, health_state, info,
    vm_state_distribution_ratio, post_provisioning_delay_seconds,
    members, members_ready, member_ready, member_in_pool,
    forecast_instances_requested, forecast_start_timestamp_seconds, forecast_interval_seconds, forecast_accuracy_ratio,
    up, last_success_timestamp_seconds, poll_duration_seconds,
    arm_requests, arm_ratelimit_remaining_reads, arm_throttled, arm_budget_wait_seconds, arm_next_links_refused,
    discovered_pools, poll_cycle_duration_seconds, poll_cycles_skipped, exporter_build_info,
)


class SnapshotCollector(Collector):
    """prometheus-client collector rendering whatever snapshot ``source`` returns at collect time."""

    def __init__(self, source: Callable[[], Snapshot]) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        snapshot = self._source()
        for family in FAMILIES:
            yield family(snapshot)


_EOF = b"# EOF\n"


@dataclass(frozen=True)
class Exposition:
    """One snapshot rendered once, in both formats; gzip made on first request and kept."""

    text: bytes
    openmetrics: bytes  # without the closing "# EOF": the scrape-time part brings it
    _gzipped: dict[bool, bytes] = field(default_factory=dict, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, compare=False)

    def body(self, openmetrics_format: bool) -> bytes:
        return self.openmetrics if openmetrics_format else self.text

    def gzipped(self, openmetrics_format: bool) -> bytes:
        with self._lock:
            if openmetrics_format not in self._gzipped:
                self._gzipped[openmetrics_format] = gzip.compress(self.body(openmetrics_format), compresslevel=6)
            return self._gzipped[openmetrics_format]


def render(snapshot: Snapshot) -> Exposition:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(lambda: snapshot))
    return Exposition(text=generate_latest(registry), openmetrics=openmetrics.generate_latest(registry).removesuffix(_EOF))


@dataclass(frozen=True)
class Publication:
    snapshot: Snapshot
    exposition: Exposition


class Publisher:
    """Holds the latest rendered snapshot; ``publish`` swaps in a new one in one step."""

    def __init__(self, initial: Snapshot) -> None:
        self.current = Publication(initial, render(initial))

    def publish(self, snapshot: Snapshot) -> None:
        self.current = Publication(snapshot, render(snapshot))
