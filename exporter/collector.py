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


def instances(snapshot: Snapshot) -> Metric:
    family = _gauge(snapshot, "instances", "Instances in the standby pool by state, from the runtime view.", ("availability_zone", "state"))
    for status, data in _with_data(snapshot):
        for entry in data.runtime.instance_counts:
            family.add_metric([*_pool_values(status), entry.availability_zone, entry.state], entry.count)
    return family


def max_ready_capacity(snapshot: Snapshot) -> Metric:
    family = _gauge(snapshot, "max_ready_capacity", "Maximum ready capacity of the pool (elasticityProfile.maxReadyCapacity).")
    for status, data in _with_data(snapshot):
        if data.pool.max_ready_capacity is not None:
            family.add_metric(_pool_values(status), data.pool.max_ready_capacity)
    return family


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
    family = _gauge(snapshot, "info", "Standby pool metadata; always 1.", ("location",))
    for status, data in _with_data(snapshot):
        family.add_metric([*_pool_values(status), data.pool.location], 1.0)
    return family


def members(snapshot: Snapshot) -> Metric:
    family = _gauge(snapshot, "members", "Member container groups of the pool by provisioningState.", ("provisioning_state",))
    for status, data in _with_data(snapshot):
        counts = Counter(member.provisioning_state for member in data.members)
        for state in dict.fromkeys((*model.CONTAINER_GROUP_PROVISIONING_STATES, *sorted(counts))):
            family.add_metric([*_pool_values(status), state], counts.get(state, 0))
    return family


def members_ready(snapshot: Snapshot) -> Metric:
    family = _gauge(
        snapshot, "members_ready",
        "Member container groups that are ready: provisioningState Succeeded, state Running, every container Running.",
    )
    for status, data in _with_data(snapshot):
        family.add_metric(_pool_values(status), sum(member.ready for member in data.members))
    return family


def member_ready(snapshot: Snapshot) -> Metric:
    family = _gauge(snapshot, "member_ready", "1 when the member container group is ready, else 0.", ("member",))
    for status, data in _with_data(snapshot):
        for member in data.members:
            family.add_metric([*_pool_values(status), member.name], 1.0 if member.ready else 0.0)
    return family


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
    instances, max_ready_capacity, provisioning_state, health_state, info, members, members_ready, member_ready,
    up, last_success_timestamp_seconds, poll_duration_seconds,
    arm_requests, arm_ratelimit_remaining_reads, poll_cycles_skipped, exporter_build_info,
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
