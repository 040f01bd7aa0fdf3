"""Snapshot -> Prometheus metric families, from a declared catalogue. Pure: no I/O, no ARM calls at scrape time.

Every family the exporter exposes is one :class:`Family` in :data:`CATALOGUE` (name, help, type, labels and
a generator of ``(label values, value)`` samples), as kube-state-metrics declares its ``FamilyGenerator``\\ s.
``docs/metrics.md`` and the contract fixture ``tests/fixtures/assets/metric_names.txt`` are generated from
the catalogue (``docs/generate_metrics.py``). Sample output::

    # HELP azure_standby_pool_instances Instances in the standby pool by state, from the runtime view. Cached: ...
    # TYPE azure_standby_pool_instances gauge
    azure_standby_pool_instances{subscription_id="0000...",resource_group="rg",pool="web",pool_kind="container_group",
                                 availability_zone="",state="Running"} 20.0
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from . import __version__, model
from .snapshot import PoolData, PoolStatus, Snapshot

PREFIX = "azure_standby_pool_"
POOL_LABELS = ("subscription_id", "resource_group", "pool", "pool_kind")

LabelValues = tuple[str, ...]
Sample = tuple[LabelValues, float]
Generator = Callable[[Snapshot], Iterable[Sample]]


class MetricType(StrEnum):
    GAUGE = "gauge"
    COUNTER = "counter"


@dataclass(frozen=True)
class Family:
    """One declared metric family. ``generate`` is None for a family another module keeps live (``owner``)."""

    name: str  # without the prefix, and without ``_total`` for counters
    help: str
    type: MetricType
    labels: tuple[str, ...]
    generate: Generator | None = None
    owner: str = "exporter.collector"
    cached: bool = True  # the values come from the background poll (HELP says so)
    notes: str = ""  # reference detail for docs/metrics.md beyond the HELP text

    @property
    def full_name(self) -> str:
        return PREFIX + self.name

    @property
    def exposed_name(self) -> str:
        """The sample name Prometheus sees (counters end in ``_total``)."""
        return self.full_name + ("_total" if self.type == MetricType.COUNTER else "")

    def help_text(self, interval: float) -> str:
        if not self.cached:
            return self.help
        return f"{self.help} Cached: refreshed every {interval:g}s by a background poll of Azure Resource Manager."

    def build(self, snapshot: Snapshot) -> Metric:
        assert self.generate is not None, f"{self.full_name} is kept live by {self.owner}"
        kind = CounterMetricFamily if self.type == MetricType.COUNTER else GaugeMetricFamily
        family = kind(self.full_name, self.help_text(snapshot.interval), labels=list(self.labels))
        for values, value in self.generate(snapshot):
            family.add_metric(list(values), value)
        return family


# -- sample helpers ------------------------------------------------------------------------------

def _pool_values(status: PoolStatus) -> LabelValues:
    ref = status.ref
    return (ref.subscription_id, ref.resource_group, ref.name, ref.kind)


def _with_data(snapshot: Snapshot) -> Iterator[tuple[PoolStatus, PoolData]]:
    for status in snapshot.pools:
        if status.data is not None:
            yield status, status.data


def _per_pool(value_of: Callable[[PoolData], float | None]) -> Generator:
    """One optional value per pool with data: a sample only where ``value_of`` gives a number."""
    def generate(snapshot: Snapshot) -> Iterator[Sample]:
        for status, data in _with_data(snapshot):
            value = value_of(data)
            if value is not None:
                yield _pool_values(status), value
    return generate


def _one_hot(labels: LabelValues, current: str, known: tuple[str, ...]) -> Iterator[Sample]:
    for state in dict.fromkeys((*known, current)):
        yield (*labels, state), 1.0 if state == current else 0.0


def _with_runtime(snapshot: Snapshot) -> Iterator[tuple[PoolStatus, model.RuntimeView]]:
    for status, data in _with_data(snapshot):
        if data.runtime is not None:
            yield status, data.runtime


def _with_pool(snapshot: Snapshot) -> Iterator[tuple[PoolStatus, model.Pool]]:
    for status, data in _with_data(snapshot):
        if data.pool is not None:
            yield status, data.pool


def _with_members(snapshot: Snapshot) -> Iterator[tuple[PoolStatus, tuple[model.Member, ...]]]:
    for status, data in _with_data(snapshot):
        if data.members is not None:
            yield status, data.members


def _pool_field(field_name: str) -> Callable[[PoolData], float | None]:
    def value_of(data: PoolData) -> float | None:
        return None if data.pool is None else getattr(data.pool, field_name)
    return value_of


def _forecast_field(field_name: str) -> Callable[[PoolData], float | None]:
    def value_of(data: PoolData) -> float | None:
        forecast = None if data.runtime is None else data.runtime.forecast
        return None if forecast is None else getattr(forecast, field_name)
    return value_of


def _per_polled_pool(value_of: Callable[[PoolStatus], float]) -> Generator:
    """One value for every pool polled at least once."""
    def generate(snapshot: Snapshot) -> Iterator[Sample]:
        for status in snapshot.pools:
            if status.polled:
                yield _pool_values(status), value_of(status)
    return generate


def _per_subscription(values_of: Callable[[Snapshot], dict[str, float] | dict[str, int]]) -> Generator:
    def generate(snapshot: Snapshot) -> Iterator[Sample]:
        for subscription_id, value in sorted(values_of(snapshot).items()):
            yield (subscription_id,), float(value)
    return generate


def _per_subscription_counter(values_of: Callable[[Snapshot], dict[str, float] | dict[str, int]]) -> Generator:
    """A counter per subscription: 0 for every configured or discovered one until its first event."""
    return _per_subscription(lambda snapshot: {**dict.fromkeys(snapshot.subscriptions, 0.0), **values_of(snapshot)})


# -- generators ----------------------------------------------------------------------------------

def _remaining_resource(snapshot: Snapshot) -> Iterator[Sample]:
    for labels, value in sorted(snapshot.arm.remaining_resource.items()):
        yield labels, float(value)


def _instances(snapshot: Snapshot) -> Iterator[Sample]:
    for status, runtime in _with_runtime(snapshot):
        for entry in runtime.instance_counts:
            yield (*_pool_values(status), entry.availability_zone, entry.state), entry.count


def _provisioning_state(snapshot: Snapshot) -> Iterator[Sample]:
    for status, pool in _with_pool(snapshot):
        yield from _one_hot(_pool_values(status), pool.provisioning_state, model.POOL_PROVISIONING_STATES)


def _health_state(snapshot: Snapshot) -> Iterator[Sample]:
    for status, runtime in _with_runtime(snapshot):
        if runtime.health_state is not None:
            yield from _one_hot(_pool_values(status), runtime.health_state, model.HEALTH_STATES)


def _info(snapshot: Snapshot) -> Iterator[Sample]:
    for status, pool in _with_pool(snapshot):
        yield (*_pool_values(status), pool.location, pool.virtual_machine_state or "", pool.scale_set or "", ",".join(pool.zones)), 1.0


def _vm_state_distribution(snapshot: Snapshot) -> Iterator[Sample]:
    for status, pool in _with_pool(snapshot):
        for share in pool.vm_state_distribution:
            yield (*_pool_values(status), share.state), share.ratio


def _members(snapshot: Snapshot) -> Iterator[Sample]:
    for status, members in _with_members(snapshot):
        counts = Counter(member.provisioning_state for member in members)
        for state in dict.fromkeys((*model.MEMBER_PROVISIONING_STATES[status.ref.kind], *sorted(counts))):
            yield (*_pool_values(status), state), counts.get(state, 0)


def _members_ready(snapshot: Snapshot) -> Iterator[Sample]:
    for status, members in _with_members(snapshot):
        yield _pool_values(status), sum(member.ready for member in members)


def _member_ready(snapshot: Snapshot) -> Iterator[Sample]:
    for status, members in _with_members(snapshot):
        for member in members:
            yield (*_pool_values(status), member.name), 1.0 if member.ready else 0.0


def _member_in_pool(snapshot: Snapshot) -> Iterator[Sample]:
    for status, members in _with_members(snapshot):
        for member in members:
            if member.in_pool is not None:
                yield (*_pool_values(status), member.name), 1.0 if member.in_pool else 0.0


def _forecast_instances_requested(snapshot: Snapshot) -> Iterator[Sample]:
    for status, runtime in _with_runtime(snapshot):
        if runtime.forecast is not None:
            for step, value in enumerate(runtime.forecast.instances_requested):
                yield (*_pool_values(status), str(step)), value


def _recent_instances_requested(snapshot: Snapshot) -> Iterator[Sample]:
    """forecastInfo's recent history; step counts back from the forecast start, 1 = the latest interval."""
    for status, runtime in _with_runtime(snapshot):
        if runtime.forecast is not None:
            for step, value in enumerate(reversed(runtime.forecast.recent_instances_requested), start=1):
                yield (*_pool_values(status), str(step)), value


def _last_success(snapshot: Snapshot) -> Iterator[Sample]:
    for status in snapshot.pools:
        if status.last_success is not None:
            yield _pool_values(status), status.last_success


def _poll_duration(snapshot: Snapshot) -> Iterator[Sample]:
    for status in snapshot.pools:
        if status.data is not None and status.poll_duration is not None:
            yield _pool_values(status), status.poll_duration


def _arm_requests(snapshot: Snapshot) -> Iterator[Sample]:
    yield from sorted(snapshot.arm.requests.items())


def _discovered_pools(snapshot: Snapshot) -> Iterator[Sample]:
    yield from sorted(snapshot.discovered.items())


def _poll_cycle_duration(snapshot: Snapshot) -> Iterator[Sample]:
    if snapshot.cycle_duration is not None:
        yield (), snapshot.cycle_duration


def _poll_cycles_skipped(snapshot: Snapshot) -> Iterator[Sample]:
    yield (), snapshot.cycles_skipped


def _build_info(snapshot: Snapshot) -> Iterator[Sample]:
    yield (__version__,), 1.0


def _total_shards(snapshot: Snapshot) -> Iterator[Sample]:
    yield (), snapshot.shard_count


def _shard_ordinal(snapshot: Snapshot) -> Iterator[Sample]:
    yield (str(snapshot.shard_index),), snapshot.shard_index


# -- the catalogue -------------------------------------------------------------------------------

GAUGE, COUNTER = MetricType.GAUGE, MetricType.COUNTER
SUBSCRIPTION = ("subscription_id",)

CATALOGUE: tuple[Family, ...] = (
    Family("instances", "Instances in the standby pool by state, from the runtime view.", GAUGE,
           (*POOL_LABELS, "availability_zone", "state"), _instances,
           notes="Every known state is present, 0 when absent (container groups: Creating, Running, Deleting; VMs: Running, "
                 "Creating, Starting, Deleting, Deallocated, Deallocating, Hibernated, Hibernating); one series per zone of a "
                 "zonal pool, `availability_zone=\"\"` for a non-zonal summary; an unknown state is published verbatim."),
    Family("max_ready_capacity", "Maximum ready capacity of the pool (elasticityProfile.maxReadyCapacity).", GAUGE,
           POOL_LABELS, _per_pool(_pool_field("max_ready_capacity"))),
    Family("min_ready_capacity", "Minimum ready capacity of a virtual machine pool (elasticityProfile.minReadyCapacity), when set.",
           GAUGE, POOL_LABELS, _per_pool(_pool_field("min_ready_capacity")),
           notes="Absent when unset."),
    Family("dynamic_sizing_enabled",
           "1 when the pool's ready target follows Azure's forecast below max ready capacity "
           "(elasticityProfile.dynamicSizing.enabled), else 0 (also before api-version 2025-10-01).",
           GAUGE, POOL_LABELS, _per_pool(_pool_field("dynamic_sizing")),
           notes="Read from api-version 2025-10-01 on (`azure.api_versions.standby_pool: \"2025-10-01\"`); such a pool runs "
                 "below half of its max ready capacity by design, and `AzureStandbyPoolLow` leaves it out."),
    Family("provisioning_state", "1 for the pool's provisioningState, 0 for the other known states.", GAUGE,
           (*POOL_LABELS, "state"), _provisioning_state,
           notes="Known states: Succeeded, Failed, Canceled, Deleting; an unknown state is published verbatim."),
    Family("health_state", "1 for the pool's health state from the runtime view status, 0 for the other known states.", GAUGE,
           (*POOL_LABELS, "state"), _health_state,
           notes="From the runtime view's `status.code` (`HealthState/healthy`, `HealthState/degraded`, a new code verbatim "
                 "without its prefix); absent when there is no status."),
    Family("info",
           "Standby pool metadata; always 1. VM pools also name the kept VM state and the attached scale set; "
           "zones lists a container group pool's availability zones (\"1,2,3\", empty when none).", GAUGE,
           (*POOL_LABELS, "location", "virtual_machine_state", "scale_set", "zones"), _info,
           notes="`virtual_machine_state` and `scale_set` are empty for container group pools; `zones` is a container group "
                 "pool's `properties.zones` (api-version 2025-03-01+) joined by commas, empty when it has none and for VM pools "
                 "(whose zones come from their scale set)."),
    Family("vm_state_distribution_ratio",
           "Share of a Mix virtual machine pool's ready VMs kept in each state (vmStateDistribution), 0 to 1.", GAUGE,
           (*POOL_LABELS, "state"), _vm_state_distribution,
           notes="Mix VM pools at api-version 2026-04-01: `runningPercent: 20` is `state=\"Running\"` 0.2; Running, "
                 "Deallocated and Hibernated always present (0 when absent), an unknown `<state>Percent` verbatim; absent "
                 "for other pools and older api-versions."),
    Family("post_provisioning_delay_seconds",
           "Time a new VM waits after provisioning before it counts as available (elasticityProfile.postProvisioningDelay), when set.",
           GAUGE, POOL_LABELS, _per_pool(_pool_field("post_provisioning_delay_seconds")),
           notes="VM pools at api-version 2025-10-01+; the ISO 8601 duration (`PT2S`) in seconds; absent when unset or not a "
                 "duration without years or months."),
    Family("members", "Members of the pool (container groups or VMs) by provisioning state.", GAUGE,
           (*POOL_LABELS, "provisioning_state"), _members,
           notes="Every known provisioning state is present, 0 when absent."),
    Family("members_ready",
           "Members that are ready. Container groups: provisioningState Succeeded, state Running, every container Running. "
           "VMs: in the pool, provisioning succeeded, power state the one the pool keeps.",
           GAUGE, POOL_LABELS, _members_ready),
    Family("member_ready", "1 when the member (container group or VM) is ready, else 0.", GAUGE, (*POOL_LABELS, "member"), _member_ready),
    Family("member_in_pool", "1 while the VM waits in the standby pool (isVMInStandbyPool), 0 once handed out.", GAUGE,
           (*POOL_LABELS, "member"), _member_in_pool,
           notes="VM pools only."),
    Family("forecast_instances_requested",
           "Azure's forecast of instances requested, per forecast interval (step 0 starts at the forecast start).", GAUGE,
           (*POOL_LABELS, "step"), _forecast_instances_requested,
           notes="Steps 0..11, one per forecast interval from the forecast start; absent without a forecast."),
    Family("forecast_start_timestamp_seconds", "Unix time at which the forecast's step 0 starts.", GAUGE, POOL_LABELS,
           _per_pool(_forecast_field("start_timestamp"))),
    Family("forecast_interval_seconds", "Length of one forecast step.", GAUGE, POOL_LABELS, _per_pool(_forecast_field("interval_seconds"))),
    Family("forecast_accuracy_ratio", "Accuracy Azure reports for its forecast, 0 to 1.", GAUGE, POOL_LABELS,
           _per_pool(_forecast_field("accuracy_ratio")),
           notes="Azure's 85 is 0.85."),
    Family("recent_instances_requested",
           "Instances requested from the pool per past forecast interval, as Azure reports with its forecast "
           "(step 1 is the interval just before the forecast start, 2 the one before it, ...).", GAUGE,
           (*POOL_LABELS, "step"), _recent_instances_requested,
           notes="From `forecastInfo`: `instancesRequestedCount_recentHistory` (a JSON string inside the JSON string, "
                 "Microsoft's REST examples) or `InstancesRequestedCountRecentHistory` (an array, Microsoft's prediction "
                 "article). The array is taken as chronological, its LAST element the interval just before "
                 "`forecastStartTime` (nothing in Microsoft's documentation says otherwise); up to 12 steps, the most "
                 "recent kept; absent without a forecast or a readable history."),
    Family("up", "1 when the last poll read the pool's runtime view (instance counts), else 0.", GAUGE, POOL_LABELS,
           _per_polled_pool(lambda status: 1.0 if status.up else 0.0),
           notes="The depletion signal: a failed pool-resource or member read does not make it 0."),
    Family("resource_up",
           "1 when the pool resource (capacity, provisioning state, info) comes from a pool list read within polling.pool_refresh, else 0.",
           GAUGE, POOL_LABELS, _per_polled_pool(lambda status: 1.0 if status.resource_up else 0.0)),
    Family("members_up", "1 when the last poll read the pool's member list, else 0.", GAUGE, POOL_LABELS,
           _per_polled_pool(lambda status: 1.0 if status.members_up else 0.0),
           notes="The list is the container groups of the pool's resource group, or the VM pool's `standbyVirtualMachines`."),
    Family("member_read_failures",
           "Listed members whose latest detail read failed (retried every poll; kept until stale, never-read ones not published).",
           GAUGE, POOL_LABELS, _per_polled_pool(lambda status: float(status.member_read_failures)),
           notes="Steady while a fault lasts, since failed members are retried every cycle."),
    Family("last_success_timestamp_seconds", "Unix time of the last successful read of the pool's runtime view.", GAUGE, POOL_LABELS,
           _last_success),
    Family("poll_duration_seconds", "Duration of the pool's last poll.", GAUGE, POOL_LABELS, _poll_duration),
    Family("arm_requests", "ARM requests by HTTP status code (code=\"error\" when no response came).", COUNTER,
           ("subscription_id", "operation", "code"), _arm_requests,
           notes="Operations `runtime_view`, `pool_list`, `container_group_list`, `container_group`, `vm_list`, "
                 "`vm_scale_set_list` (a scale set's VMs with instance views), `vm_instance_view` (the fallback)."),
    Family("arm_ratelimit_remaining_reads", "Last x-ms-ratelimit-remaining-subscription-reads header seen from ARM.", GAUGE,
           SUBSCRIPTION, _per_subscription(lambda snapshot: snapshot.arm.remaining_reads),
           notes="This principal's bucket: 250 reads, refilled at 25/s."),
    Family("arm_ratelimit_remaining_global_reads",
           "Last x-ms-ratelimit-remaining-subscription-global-reads header seen from ARM (the bucket all principals share).", GAUGE,
           SUBSCRIPTION, _per_subscription(lambda snapshot: snapshot.arm.remaining_global_reads),
           notes="The bucket every principal of the subscription shares: 15x the per-principal one."),
    Family("arm_ratelimit_remaining_resource",
           "Last x-ms-ratelimit-remaining-resource header seen from a resource provider, per throttling policy.", GAUGE,
           ("subscription_id", "policy"), _remaining_resource,
           notes="Resource-provider throttling beside ARM's: Compute answers e.g. `Microsoft.Compute/HighCostGet3Min;107,"
                 "Microsoft.Compute/HighCostGet30Min;827`, one series per policy; absent until a provider sends it."),
    Family("arm_throttled", "ARM 429 answers that paused every read of the subscription until Retry-After passed.", COUNTER,
           SUBSCRIPTION, _per_subscription_counter(lambda snapshot: snapshot.arm.throttled)),
    Family("arm_budget_wait_seconds", "Time reads waited for the client-side read budget or a Retry-After pause.", COUNTER,
           SUBSCRIPTION, _per_subscription_counter(lambda snapshot: snapshot.arm.budget_wait_seconds)),
    Family("arm_next_links_refused",
           "Paging nextLinks refused because they pointed off the ARM endpoint (the token never goes there).", COUNTER,
           SUBSCRIPTION, _per_subscription_counter(lambda snapshot: snapshot.arm.next_links_refused),
           notes="The bearer token is never sent off the ARM endpoint."),
    Family("discovered_pools", "Standby pools found by discovery and passing its filters.", GAUGE,
           ("subscription_id", "pool_kind"), _discovered_pools),
    Family("poll_cycle_duration_seconds", "Wall time of the last complete poll cycle over every pool.", GAUGE, (), _poll_cycle_duration),
    Family("poll_cycles_skipped", "Poll cycles skipped because the previous cycle was still running.", COUNTER, (), _poll_cycles_skipped),
    Family("exporter_build_info", "Exporter build information; always 1.", GAUGE, ("version",), _build_info, cached=False),
    Family("exporter_total_shards", "Number of exporter replicas sharing the pools (sharding.count; 1 when not sharded).",
           GAUGE, (), _total_shards, cached=False,
           notes="As kube-state-metrics' `kube_state_metrics_total_shards`; `AzureStandbyPoolExporterShardsMissing` and "
                 "`AzureStandbyPoolExporterShardingMismatch` use it."),
    Family("exporter_shard_ordinal", "This replica's shard, 0 .. total_shards-1 (sharding.index; 0 when not sharded).",
           GAUGE, ("shard_ordinal",), _shard_ordinal, cached=False,
           notes="As kube-state-metrics' `kube_state_metrics_shard_ordinal`: the ordinal as value and as label."),
    # Kept live by other modules and rendered with the process metrics at scrape time.
    Family("config_last_reload_successful", "1 when the last configuration reload (or the initial load) succeeded, 0 when it failed.",
           GAUGE, (), owner="exporter.reload", cached=False),
    Family("config_last_reload_success_timestamp_seconds", "When the configuration was last loaded successfully.",
           GAUGE, (), owner="exporter.reload", cached=False),
    Family("web_auth_failures", "HTTP requests refused with 401 because of a wrong or missing basic-auth password.",
           COUNTER, (), owner="exporter.webapp", cached=False),
    Family("web_auth_throttled", "HTTP requests refused with 429 because the queue of password checks was full.",
           COUNTER, (), owner="exporter.webapp", cached=False,
           notes="Sent with `Retry-After: 1` during a flood of password checks; not counted as auth failures."),
    Family("web_tls_handshake_failures", "Connections closed because their TLS handshake failed or timed out.",
           COUNTER, (), owner="exporter.webapp", cached=False),
    Family("web_connections_closed",
           "Connections the exporter closed: at the connection limit, request head too slow, response not read in time.",
           COUNTER, ("reason",), owner="exporter.webapp", cached=False,
           notes="`reason`: `limit` (connection limit), `head_timeout` (request head not received within 10 s), "
                 "`write_timeout` (answer not read within 60 s)."),
)

BY_NAME = {family.name: family for family in CATALOGUE}


class SnapshotCollector(Collector):
    """prometheus-client collector rendering whatever snapshot ``source`` returns at collect time."""

    def __init__(self, source: Callable[[], Snapshot]) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        snapshot = self._source()
        for family in CATALOGUE:
            if family.generate is not None:
                yield family.build(snapshot)
