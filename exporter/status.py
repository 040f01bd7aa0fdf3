"""The status document (``/status.json``, docs/status.md): a snapshot as operators read it. Pure: no I/O.

Per pool: its condition (depleted, low, fine, unknown, pending), ready instances against max ready
capacity, states, health, provisioning, members, forecast, the age of the last success and the parts
that failed; worst first. "Ready" counts as ``prometheus/alerts.yaml`` does: state Running for
container group pools, Running, Deallocated or Hibernated for virtual machine pools.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import __version__
from .snapshot import PoolStatus, Snapshot

READY_STATES = {"container_group": frozenset({"Running"}), "virtual_machine": frozenset({"Running", "Deallocated", "Hibernated"})}
LOW_RATIO = 0.5  # below half of max ready capacity is "low", as the AzureStandbyPoolLow alert says
# Worst first: the order of conditions on the page and in ``pools``.
CONDITIONS = ("depleted", "low", "unknown", "pending", "fine")


@dataclass(frozen=True)
class ReloadState:
    """The configuration reload status, as :class:`exporter.reload.Reloader` keeps it."""

    supported: bool
    successful: bool
    last_success_timestamp: float | None


@dataclass(frozen=True)
class StatusContext:
    """What the page shows beyond the snapshot: shard, reload status, the metrics path."""

    shard_index: int = 0
    shard_count: int = 1
    reload: ReloadState | None = None
    telemetry_path: str = "/metrics"


def status_document(snapshot: Snapshot, context: StatusContext, now: float) -> dict[str, Any]:
    """The JSON status document for ``snapshot`` at wall-clock time ``now``."""
    pools = sorted((_pool(status, now) for status in snapshot.pools), key=_worst_first)
    remaining = snapshot.arm.remaining_reads
    reload = context.reload
    return {
        "version": __version__,
        "generated_timestamp": now,
        "interval_seconds": snapshot.interval,
        "ready": snapshot.ready,
        "telemetry_path": context.telemetry_path,
        "shard": {"index": context.shard_index, "count": context.shard_count},
        "reload": None if reload is None else {
            "supported": reload.supported, "successful": reload.successful,
            "last_success_timestamp": reload.last_success_timestamp,
        },
        "discovered_pools": sum(snapshot.discovered.values()),
        "poll_cycles": snapshot.cycles,
        "poll_cycles_skipped": snapshot.cycles_skipped,
        "poll_cycle_duration_seconds": snapshot.cycle_duration,
        "arm_remaining_reads": min(remaining.values()) if remaining else None,
        "summary": {condition: sum(pool["condition"] == condition for pool in pools) for condition in CONDITIONS},
        "pools": pools,
    }


def _worst_first(pool: dict[str, Any]) -> tuple[int, int, float, str, str, str]:
    ratio = pool["ready"] / pool["max_ready_capacity"] if pool["ready"] is not None and pool["max_ready_capacity"] else 1.0
    return (CONDITIONS.index(pool["condition"]), -len(pool["errors"]), ratio,
            pool["subscription_id"].lower(), pool["resource_group"].lower(), pool["name"].lower())


def _pool(status: PoolStatus, now: float) -> dict[str, Any]:
    ref, data = status.ref, status.data
    runtime = data.runtime if data is not None else None
    resource = data.pool if data is not None else None
    members = data.members if data is not None else None
    states: dict[str, int] = {}
    for count in runtime.instance_counts if runtime is not None else ():
        states[count.state] = states.get(count.state, 0) + count.count
    ready = sum(n for state, n in states.items() if state in READY_STATES[ref.kind]) if runtime is not None else None
    maximum = resource.max_ready_capacity if resource is not None else None
    forecast = runtime.forecast if runtime is not None else None
    return {
        "subscription_id": ref.subscription_id,
        "resource_group": ref.resource_group,
        "name": ref.name,
        "kind": ref.kind,
        "condition": _condition(status.polled, ready, maximum, resource is not None and resource.dynamic_sizing),
        "ready": ready,
        "max_ready_capacity": maximum,
        "min_ready_capacity": resource.min_ready_capacity if resource is not None else None,
        "dynamic_sizing": resource.dynamic_sizing if resource is not None else None,
        "states": states,
        "health_state": runtime.health_state if runtime is not None else None,
        "provisioning_state": resource.provisioning_state if resource is not None else (runtime.provisioning_state if runtime else None),
        "virtual_machine_state": resource.virtual_machine_state if resource is not None else None,
        "members": None if members is None else {"ready": sum(member.ready for member in members), "total": len(members)},
        "forecast": None if forecast is None else {
            "instances_requested": list(forecast.instances_requested),
            "start_timestamp": forecast.start_timestamp,
            "interval_seconds": forecast.interval_seconds,
            "accuracy_ratio": forecast.accuracy_ratio,
        },
        "polled": status.polled,
        "last_success_timestamp": status.last_success,
        "last_success_age_seconds": None if status.last_success is None else max(0.0, now - status.last_success),
        "parts": {"runtime_view": status.up, "pool_resource": status.resource_up, "member_list": status.members_up},
        "member_read_failures": status.member_read_failures,
        "errors": [{"part": error.part, "error": error.error} for error in status.errors],
    }


def _condition(polled: bool, ready: int | None, maximum: int | None, dynamic_sizing: bool) -> str:
    """As the alerts judge a pool; a dynamically sized pool runs below half of its max by design, so it is
    never "low" (AzureStandbyPoolLow leaves it out too)."""
    if not polled:
        return "pending"
    if ready is None or maximum is None:
        return "unknown"
    if ready == 0 and maximum > 0:
        return "depleted"
    if ready < LOW_RATIO * maximum and not dynamic_sizing:
        return "low"
    return "fine"

