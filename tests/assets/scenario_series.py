"""Synthetic exporters for the alert scenarios: what Prometheus would have scraped, every 30 s.

A :class:`Replica` publishes, at every poll, the whole metric contract of
``tests/fixtures/assets/metric_names.txt`` for the pools it polls (instance counts by state and zone,
capacity, provisioning and health state, info, members and per-member series, forecast and recent
demand, per-part freshness, the exporter's own and ARM metrics), all derived from one :class:`PoolState`
so that they agree with each other. :class:`Scrapes` records them as Prometheus does: every scrape adds
the target's ``up`` and its series with ``job``/``instance`` labels; a series missing from a scrape, and
every series of a target that vanished, gets a staleness marker at once. :func:`values_notation` writes
a series in ``promtool test rules`` notation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from exporter import model

SCRAPE_SECONDS = 30
POLL_SECONDS = 60
JOB = "azure-standby-pool-exporter"
STALE = "stale"

Labels = tuple[tuple[str, str], ...]
SeriesKey = tuple[str, Labels]
Put = Callable[[str, dict[str, str], float], None]  # metric name without prefix, labels, value


@dataclass(frozen=True)
class Pool:
    subscription_id: str
    resource_group: str
    name: str
    kind: str  # container_group | virtual_machine
    max_ready: int
    zones: tuple[str, ...] = ("",)
    min_ready: int | None = None
    dynamic: bool = False
    forecast: bool = True

    @property
    def labels(self) -> dict[str, str]:
        return {"subscription_id": self.subscription_id, "resource_group": self.resource_group,
                "pool": self.name, "pool_kind": self.kind}

    @property
    def ready_state(self) -> str:
        """The state a ready instance is counted in: Running, or Deallocated for these VM pools."""
        return "Running" if self.kind == "container_group" else "Deallocated"


@dataclass
class Member:
    name: str
    ready_at: int  # poll index from which it is ready
    zone: str


@dataclass
class PoolState:
    """One pool as Azure holds it: members being created or ready; claims take ready ones away."""

    pool: Pool
    members: list[Member] = field(default_factory=list)
    created: int = 0
    claims: list[int] = field(default_factory=list)  # instances claimed per poll (minute), newest last
    hourly_demand_before: int = 12  # instances requested per hour before the scenario starts

    def demand(self, hours_back: int) -> int:
        """Instances requested in the hour ``hours_back`` hours before the latest (1 = the latest)."""
        end = len(self.claims) - 60 * (hours_back - 1)
        start = end - 60
        seen = self.claims[max(0, start):max(0, end)]
        return sum(seen) + round(self.hourly_demand_before * (60 - len(seen)) / 60)

    def ready(self, now: int) -> list[Member]:
        return [m for m in self.members if m.ready_at <= now]

    def creating(self, now: int) -> list[Member]:
        return [m for m in self.members if m.ready_at > now]

    def claim(self, now: int, count: int) -> int:
        """Hand out up to ``count`` ready instances (oldest first); returns how many were claimed."""
        ready = self.ready(now)[:max(0, count)]
        for member in ready:
            self.members.remove(member)
        return len(ready)

    def refill(self, now: int, target: int, latency: int, limit: int | None = None) -> None:
        """Start creating instances until ready + creating reaches ``target`` (at most ``limit`` now)."""
        missing = max(0, target - len(self.members))
        for _ in range(missing if limit is None else min(missing, limit)):
            self.created += 1
            zone = self.pool.zones[self.created % len(self.pool.zones)]
            self.members.append(Member(f"{self.pool.name}_{self.created:08x}", now + latency, zone))

    def fill(self, now: int, count: int) -> None:
        """Ready instances that were there before the scenario starts."""
        self.refill(now, count, latency=0)
        for member in self.members:
            member.ready_at = min(member.ready_at, now)


def _key(name: str, labels: dict[str, str]) -> SeriesKey:
    return name, tuple(sorted(labels.items()))


@dataclass
class Replica:
    """One exporter process: its shard, its pools and the counters it has accumulated."""

    instance: str
    pools: list[PoolState]
    shard_ordinal: int = 0
    total_shards: int = 1
    arm_reads: int = 0

    def exposition(self, poll: int) -> dict[SeriesKey, float]:
        """Every series the exporter serves after poll number ``poll`` (one poll every 60 s)."""
        now = poll * POLL_SECONDS
        out: dict[SeriesKey, float] = {}

        def put(name: str, labels: dict[str, str], value: float) -> None:
            out[_key("azure_standby_pool_" + name, labels)] = value

        subscriptions = sorted({s.pool.subscription_id for s in self.pools})
        for state in self.pools:
            self._pool(put, state, poll, now)
        self.arm_reads += 3 * len(self.pools)
        for sub in subscriptions:
            reads = self.arm_reads * sum(s.pool.subscription_id == sub for s in self.pools) // max(1, len(self.pools))
            for operation in ("runtime_view", "pool_list", "container_group_list", "container_group", "vm_list",
                              "vm_instance_view"):
                put("arm_requests_total", {"subscription_id": sub, "operation": operation, "code": "200"}, reads)
            put("arm_ratelimit_remaining_reads", {"subscription_id": sub}, 249)
            put("arm_ratelimit_remaining_global_reads", {"subscription_id": sub}, 3749)
            for policy, remaining in (("Microsoft.Compute/HighCostGet3Min", 107), ("Microsoft.Compute/HighCostGet30Min", 827)):
                put("arm_ratelimit_remaining_resource", {"subscription_id": sub, "policy": policy}, remaining)
            put("arm_throttled_total", {"subscription_id": sub}, 0)
            put("arm_budget_wait_seconds_total", {"subscription_id": sub}, 0)
            put("arm_next_links_refused_total", {"subscription_id": sub}, 0)
            for kind in ("container_group", "virtual_machine"):
                found = sum(s.pool.subscription_id == sub and s.pool.kind == kind for s in self.pools)
                put("discovered_pools", {"subscription_id": sub, "pool_kind": kind}, found)
        put("exporter_build_info", {"version": "0.1.0"}, 1)
        put("exporter_total_shards", {}, self.total_shards)
        put("exporter_shard_ordinal", {"shard_ordinal": str(self.shard_ordinal)}, self.shard_ordinal)
        put("config_last_reload_successful", {}, 1)
        put("config_last_reload_success_timestamp_seconds", {}, 0)
        put("poll_cycles_skipped_total", {}, 0)
        put("poll_cycle_duration_seconds", {}, 1.5)
        put("web_auth_failures_total", {}, 0)
        put("web_auth_throttled_total", {}, 0)
        for reason in ("limit", "head_timeout", "write_timeout"):
            put("web_connections_closed_total", {"reason": reason}, 0)
        put("web_tls_handshake_failures_total", {}, 0)
        return out

    @staticmethod
    def _pool(put: Put, state: PoolState, poll: int, now: int) -> None:
        pool = state.pool
        labels = pool.labels
        ready, creating = state.ready(poll), state.creating(poll)
        for zone in pool.zones:
            counts = {"Creating": sum(m.zone == zone for m in creating),
                      pool.ready_state: sum(m.zone == zone for m in ready)}
            for s in model.POOL_STATES[pool.kind]:
                put("instances", {**labels, "availability_zone": zone, "state": s}, counts.get(s, 0))
        put("max_ready_capacity", labels, pool.max_ready)
        if pool.min_ready is not None:
            put("min_ready_capacity", labels, pool.min_ready)
        for s in model.POOL_PROVISIONING_STATES:
            put("provisioning_state", {**labels, "state": s}, int(s == "Succeeded"))
        for s in model.HEALTH_STATES:
            put("health_state", {**labels, "state": s}, int(s == "healthy"))
        vm = pool.kind == "virtual_machine"
        put("info", {**labels, "location": "westeurope", "virtual_machine_state": "Deallocated" if vm else "",
                     "scale_set": f"{pool.name}-vmss" if vm else "", "zones": "" if vm else ",".join(z for z in pool.zones if z)}, 1)
        if vm:
            put("post_provisioning_delay_seconds", labels, 120)
        by_state = {"Creating": len(creating), "Succeeded": len(ready)}
        for s in model.MEMBER_PROVISIONING_STATES[pool.kind]:
            put("members", {**labels, "provisioning_state": s}, by_state.get(s, 0))
        put("members_ready", labels, len(ready))
        for member in state.members:
            put("member_ready", {**labels, "member": member.name}, int(member.ready_at <= poll))
            if vm:
                put("member_in_pool", {**labels, "member": member.name}, 1)
        put("dynamic_sizing_enabled", labels, int(pool.dynamic))
        if pool.forecast:
            # Azure's forecast, as this synthetic Azure makes it: the latest hour's demand, give or take 1.
            latest = state.demand(1)
            for step in range(model.FORECAST_STEPS):
                put("forecast_instances_requested", {**labels, "step": str(step)}, max(0, latest + step % 3 - 1))
                put("recent_instances_requested", {**labels, "step": str(step + 1)}, state.demand(step + 1))
            put("forecast_start_timestamp_seconds", labels, now - now % 3600 + 3600)
            put("forecast_interval_seconds", labels, 3600)
            put("forecast_accuracy_ratio", labels, 0.85)
        put("up", labels, 1)
        put("resource_up", labels, 1)
        put("members_up", labels, 1)
        put("member_read_failures", labels, 0)
        put("last_success_timestamp_seconds", labels, now)
        put("poll_duration_seconds", labels, 0.4)


class Scrapes:
    """What Prometheus stores: per series, one value per scrape, None where it has no sample."""

    def __init__(self, scrapes: int) -> None:
        self.scrapes = scrapes
        self.series: dict[SeriesKey, list[float | str | None]] = {}
        self._last: dict[str, set[SeriesKey]] = {}

    def _put(self, key: SeriesKey, index: int, value: float | str) -> None:
        self.series.setdefault(key, [None] * self.scrapes)[index] = value

    def scrape(self, index: int, instance: str, exposition: dict[SeriesKey, float] | None) -> None:
        """One scrape of ``instance``; ``exposition`` None: the scrape failed (``up`` 0)."""
        target = {"job": JOB, "instance": instance}
        now: set[SeriesKey] = set()
        self._put(_key("up", target), index, 0 if exposition is None else 1)
        for (name, labels), value in (exposition or {}).items():
            key = _key(name, {**dict(labels), **target})
            now.add(key)
            self._put(key, index, value)
        for key in self._last.get(instance, set()) - now:
            self._put(key, index, STALE)
        self._last[instance] = now

    def vanish(self, index: int, instance: str) -> None:
        """The target left service discovery: every series of it, ``up`` included, goes stale now."""
        for key in self._last.pop(instance, set()) | {_key("up", {"job": JOB, "instance": instance})}:
            self._put(key, index, STALE)

    def input_series(self) -> Iterator[dict[str, str]]:
        for (name, labels), values in sorted(self.series.items()):
            selector = ",".join(f'{k}="{v}"' for k, v in labels)
            yield {"series": f"{name}{{{selector}}}", "values": values_notation(values)}


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def values_notation(values: Iterable[float | str | None]) -> str:
    """promtool's notation: ``_xN`` is N missing samples, ``a+bxN`` the N+1 values a, a+b, ... a+N*b."""
    items = list(values)
    while items and items[-1] is None:
        items.pop()
    out: list[str] = []
    i = 0
    while i < len(items):
        value = items[i]
        if value is None or value == STALE:
            j = i
            while j < len(items) and items[j] == value:
                j += 1
            out.append("_" if value is None and j - i == 1 else f"_x{j - i}" if value is None else value)
            i = j if value is None else i + 1
            continue
        j = i + 1
        delta = None
        while j < len(items) and isinstance(items[j], (int, float)) and not isinstance(items[j], bool):
            step = items[j] - items[j - 1]  # type: ignore[operator]
            if delta is None:
                delta = step
            elif not math.isclose(step, delta, abs_tol=1e-9):
                break
            j += 1
        count = j - i - 1
        if count == 0:
            out.append(_number(value))  # type: ignore[arg-type]
        elif not delta:
            out.append(f"{_number(value)}x{count}")  # type: ignore[arg-type]
        else:
            sign = "+" if delta > 0 else "-"
            out.append(f"{_number(value)}{sign}{_number(abs(delta))}x{count}")  # type: ignore[arg-type]
        i = j
    return " ".join(out)
