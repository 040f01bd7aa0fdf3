"""Background polling: each cycle reads ARM and swaps in a new immutable :class:`Snapshot` in one step.

A scrape only ever reads the published snapshot; it never sees half a cycle and never calls ARM.

A cycle runs in two waves on one bounded pool of workers (``polling.concurrency``), so its wall time
is set by latency and the read budget, not by the number of pools:

1. every runtime view; the paged pool list of each resource group (and kind) whose pool resources
   are due (``polling.pool_refresh``); one paged container-group list per resource group; the
   ``standbyVirtualMachines`` list of each VM pool;
2. the detail GET of every member that is due: new, changed state in the list, or not ready; and,
   oldest first, members read longer than ``polling.member_refresh`` ago, at most the share that
   spreads all of them evenly over that period (members x interval / member_refresh per cycle).
"""

from __future__ import annotations

import functools
import hashlib
import math
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from urllib.parse import quote
from typing import TypeVar

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobExecutionEvent
from apscheduler.schedulers.background import BackgroundScheduler

from . import model
from .arm import ArmClient, ArmError, ErrorKind
from .armstats import ArmStats, ArmStatsSnapshot
from .config import PoolRef, Settings

log = logging.getLogger(__name__)

T = TypeVar("T")
Outcome = T | ArmError  # a read's result, or why it failed

_PROVIDERS = {
    "container_group": "providers/Microsoft.StandbyPool/standbyContainerGroupPools",
    "virtual_machine": "providers/Microsoft.StandbyPool/standbyVirtualMachinePools",
}
_CONTAINER_GROUPS = "providers/Microsoft.ContainerInstance/containerGroups"


@dataclass(frozen=True)
class PoolData:
    """What one successful poll learned about a pool."""

    pool: model.Pool
    runtime: model.RuntimeView
    members: tuple[model.Member, ...]


@dataclass(frozen=True)
class PoolStatus:
    ref: PoolRef
    polled: bool = False
    up: bool = False
    last_success: float | None = None  # wall-clock seconds
    poll_duration: float | None = None
    last_error: str | None = None
    data: PoolData | None = None


@dataclass(frozen=True)
class Snapshot:
    pools: tuple[PoolStatus, ...]
    arm: ArmStatsSnapshot
    interval: float
    cycles_skipped: int = 0
    discovered: dict[tuple[str, str], int] = field(default_factory=dict)  # (subscription, kind) -> pools found
    cycle_duration: float | None = None
    cycles: int = 0  # completed poll cycles
    shard_index: int = 0  # this replica's shard (sharding.index) ...
    shard_count: int = 1  # ... of sharding.count

    @property
    def ready(self) -> bool:
        """A cycle has completed and every pool has been polled at least once (successfully or not)."""
        return self.cycles > 0 and all(status.polled for status in self.pools)


@dataclass(frozen=True)
class _Candidate:
    key: str  # lower-cased resource path
    listed_state: str  # provisioningState as the list shows it
    read: Callable[[], Outcome[model.Member]]


@dataclass(frozen=True)
class _CachedMember:
    member: model.Member
    listed_state: str  # provisioningState in the list when the details were read
    read_at: float


def _segment(name: str) -> str:
    """One URL path segment: names from ARM or the configuration never become a query, fragment or another path."""
    return quote(name, safe="")


def _resource_url_path(resource_id: str) -> str:
    """A resource id from ARM as a URL path, each segment escaped."""
    return "/".join(_segment(part) for part in resource_id.split("/"))


def pool_path(ref: PoolRef) -> str:
    return (f"/subscriptions/{_segment(ref.subscription_id)}/resourceGroups/{_segment(ref.resource_group)}"
            f"/{_PROVIDERS[ref.kind]}/{_segment(ref.name)}")


def resource_group_path(subscription_id: str, resource_group: str) -> str:
    return f"/subscriptions/{_segment(subscription_id)}/resourceGroups/{_segment(resource_group)}"


def container_groups_path(subscription_id: str, resource_group: str) -> str:
    return f"{resource_group_path(subscription_id, resource_group)}/{_CONTAINER_GROUPS}"


def shard_of(ref: PoolRef, count: int) -> int:
    """Stable shard of a pool: sha256 of its lower-cased resource id, modulo ``count``."""
    digest = hashlib.sha256(pool_path(ref).lower().encode()).digest()
    return int.from_bytes(digest[:8], "big") % count


# The role action each read needs: named in the log when ARM answers 403.
REQUIRED_ACTIONS = {
    "runtime_view": "Microsoft.StandbyPool/{provider}/runtimeViews/read",
    "pool_list": "Microsoft.StandbyPool/{provider}/read",
    "container_group_list": "Microsoft.ContainerInstance/containerGroups/read",
    "container_group": "Microsoft.ContainerInstance/containerGroups/read",
    "vm_list": "Microsoft.StandbyPool/standbyVirtualMachinePools/standbyVirtualMachines/read",
    "vm_instance_view": "Microsoft.Compute/virtualMachines/instanceView/read",
}


def missing_role_hint(operation: str, kind: str) -> str:
    provider = _PROVIDERS[kind].rsplit("/", 1)[-1]
    action = REQUIRED_ACTIONS.get(operation, "the exporter's read actions").format(provider=provider)
    return f"the exporter's identity lacks {action}: assign the role in deploy/azure/role.json (README: least-privilege role)"


def _pools_key(ref: PoolRef) -> tuple[str, str, str]:
    return (ref.subscription_id.lower(), ref.resource_group.lower(), ref.kind)


def _group(ref: PoolRef) -> tuple[str, str]:
    return (ref.subscription_id.lower(), ref.resource_group.lower())


def _discovery_interval(settings: Settings) -> float | None:
    return settings.discovery.interval if settings.discovery is not None else None


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Poller:
    """Polls every configured and discovered pool on a schedule and publishes snapshots."""

    def __init__(
        self,
        settings: Settings,
        client: ArmClient,
        stats: ArmStats,
        *,
        wall_clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._stats = stats
        self._now = wall_clock
        self._monotonic = monotonic
        self._settings = settings
        self._executor = ThreadPoolExecutor(max_workers=settings.polling.concurrency, thread_name_prefix="poll")
        self._scheduler: BackgroundScheduler | None = None
        self._skipped = 0
        self._cycle_lock = threading.Lock()
        self._discovered: dict[str, tuple[model.ListedPool, ...]] = {}  # subscription -> pools found there
        self._discovered_once = False
        # (subscription, resource group, kind) -> (pools of that resource group by lower-cased name, read at)
        self._pool_cache: dict[tuple[str, str, str], tuple[dict[str, model.Pool], float]] = {}
        self._member_cache: dict[str, _CachedMember] = {}
        self.on_publish: Callable[[Snapshot], None] = lambda snapshot: None
        self.snapshot = Snapshot(pools=tuple(PoolStatus(ref) for ref in self.pools()), arm=ArmStatsSnapshot(), interval=settings.polling.interval,
                                 shard_index=settings.sharding.index, shard_count=settings.sharding.count)

    # -- the pool set ------------------------------------------------------------------------------
    def pools(self) -> tuple[PoolRef, ...]:
        """Configured pools, then discovered ones not configured, keeping this replica's shard only."""
        settings = self._settings
        refs: dict[tuple[str, str, str, str], PoolRef] = {ref.key: ref for ref in settings.pools}
        for listed in (pool for pools in self._discovered.values() for pool in pools):
            ref = PoolRef(listed.subscription_id, listed.resource_group, listed.name, listed.kind)
            refs.setdefault(ref.key, ref)
        count = settings.sharding.count
        return tuple(ref for ref in refs.values() if count == 1 or shard_of(ref, count) == settings.sharding.index)

    def reconfigure(self, settings: Settings) -> None:
        """Apply a reloaded configuration from the next cycle on (interval, pools, discovery, budget-free parts)."""
        with self._cycle_lock:
            old = self._settings
            self._settings = settings
            if settings.discovery != old.discovery:
                self._discovered_once = False
            if settings.discovery is None:
                self._discovered = {}
            else:
                wanted = set(settings.discovery.subscriptions)
                self._discovered = {sub: pools for sub, pools in self._discovered.items() if sub in wanted}
            if settings.polling.concurrency != old.polling.concurrency:
                self._executor.shutdown(wait=False)
                self._executor = ThreadPoolExecutor(max_workers=settings.polling.concurrency, thread_name_prefix="poll")
        if self._scheduler is not None:
            if settings.polling.interval != old.polling.interval:
                self._scheduler.reschedule_job("poll", trigger="interval", seconds=settings.polling.interval)
            if _discovery_interval(settings) != _discovery_interval(old):
                self._schedule_discovery()  # otherwise discovery keeps its own clock: reloads never postpone it
        log.info("configuration applied", extra={"pools": len(settings.pools), "discovery": settings.discovery is not None})

    # -- scheduling -------------------------------------------------------------------------------
    def start(self) -> None:
        """Discover (if configured) and poll now, then on their intervals; overlapping runs are skipped and counted."""
        scheduler = BackgroundScheduler(daemon=True, job_defaults={"coalesce": True, "max_instances": 1})
        scheduler.add_listener(self._on_skipped, EVENT_JOB_MAX_INSTANCES)
        self._scheduler = scheduler
        self._schedule_discovery()
        interval = self._settings.polling.interval
        scheduler.add_job(self._scheduled_cycle, "interval", seconds=interval, id="poll", misfire_grace_time=max(1, int(interval)),
                          next_run_time=_utcnow())
        scheduler.start()

    def _schedule_discovery(self) -> None:
        assert self._scheduler is not None
        discovery = self._settings.discovery
        if self._scheduler.get_job("discover") is not None:
            self._scheduler.remove_job("discover")
        if discovery is not None:
            self._scheduler.add_job(self.discover_once, "interval", seconds=discovery.interval, id="discover",
                                    next_run_time=datetime.fromtimestamp(self._now() + discovery.interval, timezone.utc))

    def _scheduled_cycle(self) -> None:
        """One poll cycle; the first one (and the first after discovery is configured) discovers before it polls."""
        if self._settings.discovery is not None and not self._discovered_once:
            self.discover_once()
        self.poll_once()

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _on_skipped(self, event: JobExecutionEvent) -> None:
        if event.job_id == "poll":
            self._skipped += 1
            log.warning("poll cycle skipped: the previous one is still running", extra={"skipped_total": self._skipped})

    # -- discovery --------------------------------------------------------------------------------
    def discover_once(self) -> None:
        """List pools of every wanted kind per subscription; a failed subscription keeps what it had."""
        discovery = self._settings.discovery
        if discovery is None:
            return
        jobs = {
            (sub, kind): self._executor.submit(self._list_pools, sub, kind)
            for sub in discovery.subscriptions
            for kind in discovery.kinds
        }
        found: dict[str, list[model.ListedPool]] = {}
        failed: set[str] = set()
        for (sub, kind), job in jobs.items():
            outcome = job.result()
            if isinstance(outcome, ArmError):
                failed.add(sub)
                log.warning("discovery failed", extra={"subscription_id": sub, "pool_kind": kind, "kind": outcome.kind,
                                                       "code": outcome.code or "", "request_id": outcome.request_id or "", "error": outcome.message})
                continue
            found.setdefault(sub, []).extend(pool for pool in outcome if discovery.wants(PoolRef(pool.subscription_id, pool.resource_group, pool.name, pool.kind), pool.tags))
        with self._cycle_lock:
            for sub in discovery.subscriptions:
                if sub not in failed:
                    self._discovered[sub] = tuple(found.get(sub, ()))
            self._discovered_once = True
        log.info("discovery done", extra={"pools": sum(len(p) for p in self._discovered.values())})

    def _list_pools(self, subscription_id: str, kind: str) -> Outcome[list[model.ListedPool]]:
        def read() -> list[model.ListedPool]:
            items = self._client.list(f"/subscriptions/{subscription_id}/{_PROVIDERS[kind]}", self._versions["standby_pool"],
                                      operation="pool_list", subscription_id=subscription_id)
            return [model.parse_listed_pool(item) for item in items]

        return _attempt(read, "pool_list")

    # -- one cycle --------------------------------------------------------------------------------
    @property
    def _versions(self) -> dict[str, str]:
        return self._settings.azure.api_versions

    def poll_once(self) -> Snapshot:
        """Run one full cycle and publish its snapshot."""
        with self._cycle_lock:
            started = self._monotonic()
            refs = self.pools()
            previous = {status.ref.key: status for status in self.snapshot.pools}
            wave = self._first_wave(refs)
            self._store_pool_lists(wave)
            pools = {ref.key: self._resolve_pool(ref, wave) for ref in refs}
            candidates = {ref.key: self._candidates(ref, wave, pools[ref.key]) for ref in refs}
            reads = self._read_due_members(candidates)
            statuses = tuple(
                self._assemble(previous.get(ref.key, PoolStatus(ref)), wave[("runtime", ref.key)].result(), pools[ref.key],
                               candidates[ref.key], reads, started)
                for ref in refs
            )
            self._forget_unlisted(refs, candidates)
            snapshot = Snapshot(
                pools=statuses, arm=self._stats.snapshot(), interval=self._settings.polling.interval, cycles_skipped=self._skipped,
                discovered=self._discovered_counts(), cycle_duration=self._monotonic() - started,
                cycles=self.snapshot.cycles + 1,
                shard_index=self._settings.sharding.index, shard_count=self._settings.sharding.count,
            )
            self.snapshot = snapshot
        try:
            self.on_publish(snapshot)
        except Exception:  # keep polling; the last good exposition stays served
            log.error("publishing the snapshot failed", exc_info=True)
        return snapshot

    def _discovered_counts(self) -> dict[tuple[str, str], int]:
        discovery = self._settings.discovery
        if discovery is None:
            return {}
        counts = {(sub, kind): 0 for sub in discovery.subscriptions for kind in discovery.kinds}
        for sub, pools in self._discovered.items():
            for pool in pools:
                counts[(sub, pool.kind)] = counts.get((sub, pool.kind), 0) + 1
        return counts

    def _first_wave(self, refs: Iterable[PoolRef]) -> dict[tuple[str, object], Future]:
        """Runtime views, due pool resources, member lists: all at once on the bounded workers."""
        submit = self._executor.submit
        now = self._monotonic()
        wave: dict[tuple[str, object], Future] = {}
        for ref in refs:
            wave[("runtime", ref.key)] = submit(self._read_runtime_view, ref)
            pools_key = _pools_key(ref)
            cached = self._pool_cache.get(pools_key)
            if (cached is None or now - cached[1] >= self._settings.polling.pool_refresh) and ("pools", pools_key) not in wave:
                wave[("pools", pools_key)] = submit(self._list_pool_resources, ref)
            if ref.kind == "container_group":
                group = _group(ref)
                if ("list", group) not in wave:
                    wave[("list", group)] = submit(self._list_container_groups, ref.subscription_id, ref.resource_group)
            else:
                wave[("vms", ref.key)] = submit(self._list_virtual_machines, ref)
        return wave

    def _store_pool_lists(self, wave: dict[tuple[str, object], Future]) -> None:
        """Cache the pool lists read this cycle (the failed ones are read again next cycle)."""
        for (what, pools_key), job in wave.items():
            if what == "pools" and not isinstance(outcome := job.result(), ArmError):
                self._pool_cache[pools_key] = ({pool.name.lower(): pool for pool in outcome}, self._monotonic())  # type: ignore[index]

    def _resolve_pool(self, ref: PoolRef, wave: dict[tuple[str, object], Future]) -> Outcome[model.Pool]:
        """The pool resource from its resource group's pool list (read this cycle or cached)."""
        pools_key = _pools_key(ref)
        job = wave.get(("pools", pools_key))
        if job is not None and isinstance(outcome := job.result(), ArmError):
            return outcome
        pool = self._pool_cache[pools_key][0].get(ref.name.lower())
        if pool is None:
            return ArmError(ErrorKind.NOT_FOUND, "pool is not in its resource group's pool list", operation="pool_list")
        return pool

    def _candidates(self, ref: PoolRef, wave: dict[tuple[str, object], Future], pool: Outcome[model.Pool]) -> Outcome[list[_Candidate]]:
        """Each member the lists show, with its cache key, its state in the list and its detail read."""
        if ref.kind == "container_group":
            listed = wave[("list", _group(ref))].result()
            if isinstance(listed, ArmError):
                return listed
            return [
                _Candidate(f"{container_groups_path(ref.subscription_id, ref.resource_group)}/{_segment(summary.name)}".lower(),
                           summary.provisioning_state, functools.partial(self._read_container_group, ref, summary.name))
                for summary in listed if model.is_member(summary.name, ref.name)
            ]
        vms = wave[("vms", ref.key)].result()
        if isinstance(vms, ArmError):
            return vms
        vm_state = None if isinstance(pool, ArmError) else pool.virtual_machine_state
        return [
            _Candidate(vm.resource_id.lower(), vm.provisioning_state,
                       functools.partial(self._read_virtual_machine, ref.subscription_id, vm, vm_state))
            for vm in vms
        ]

    def _read_due_members(self, candidates: dict[tuple[str, str, str, str], Outcome[list[_Candidate]]]) -> dict[str, Future]:
        """Submit one detail GET per member that is new, changed in the list or not ready, and per aged member
        up to this cycle's share of the refresh period, oldest first."""
        reads: dict[str, Future] = {}
        aged: list[tuple[float, _Candidate]] = []
        now = self._monotonic()
        polling = self._settings.polling
        listed = [c for outcome in candidates.values() if not isinstance(outcome, ArmError) for c in outcome]
        for candidate in listed:
            cached = self._member_cache.get(candidate.key)
            if cached is None or cached.listed_state != candidate.listed_state or not cached.member.ready:
                if candidate.key not in reads:
                    reads[candidate.key] = self._executor.submit(candidate.read)
            elif now - cached.read_at >= polling.member_refresh:
                aged.append((cached.read_at, candidate))
        share = math.ceil(len(listed) * polling.interval / polling.member_refresh)
        for _, candidate in sorted(aged, key=lambda item: item[0])[:share]:
            if candidate.key not in reads:
                reads[candidate.key] = self._executor.submit(candidate.read)
        return reads

    def _assemble(
        self,
        previous: PoolStatus,
        runtime: Outcome[model.RuntimeView],
        pool: Outcome[model.Pool],
        candidates: Outcome[list[_Candidate]],
        reads: dict[str, Future],
        started: float,
    ) -> PoolStatus:
        """Combine the reads of one pool into its status; the first failure marks the pool down."""
        try:
            runtime_view, pool_resource = _unwrap(runtime), _unwrap(pool)
            members: list[model.Member] = []
            for candidate in _unwrap(candidates):
                job = reads.get(candidate.key)
                if job is None:
                    members.append(self._member_cache[candidate.key].member)
                    continue
                outcome = job.result()
                if isinstance(outcome, ArmError) and outcome.kind == ErrorKind.NOT_FOUND:
                    continue  # handed out between the list and the read
                member = _unwrap(outcome)
                self._member_cache[candidate.key] = _CachedMember(member, candidate.listed_state, self._monotonic())
                members.append(member)
        except ArmError as error:
            return self._failed(previous, error, self._monotonic() - started)
        data = PoolData(pool=pool_resource, runtime=runtime_view, members=tuple(sorted(members, key=lambda m: m.name)))
        return replace(previous, polled=True, up=True, last_success=self._now(), poll_duration=self._monotonic() - started,
                       last_error=None, data=data)

    def _forget_unlisted(self, refs: Iterable[PoolRef], candidates: dict[tuple[str, str, str, str], Outcome[list[_Candidate]]]) -> None:
        """Drop cached pools and members no longer polled or listed, so memory follows the estate."""
        groups = {_pools_key(ref) for ref in refs}
        self._pool_cache = {key: value for key, value in self._pool_cache.items() if key in groups}
        listed = {c.key for outcome in candidates.values() if not isinstance(outcome, ArmError) for c in outcome}
        self._member_cache = {key: value for key, value in self._member_cache.items() if key in listed}

    def _failed(self, previous: PoolStatus, error: ArmError, duration: float) -> PoolStatus:
        ref = previous.ref
        fields = {
            "subscription_id": ref.subscription_id, "resource_group": ref.resource_group, "pool": ref.name, "pool_kind": ref.kind,
            "kind": error.kind, "code": error.code or "", "request_id": error.request_id or "",
            "operation": error.operation, "error": error.message,
        }
        if error.kind == ErrorKind.FORBIDDEN:
            fields["hint"] = missing_role_hint(error.operation, ref.kind)
        log.warning("pool poll failed", extra=fields)
        data = previous.data
        fresh = previous.last_success is not None and self._now() - previous.last_success < self._settings.polling.stale_after
        if error.kind == ErrorKind.NOT_FOUND or not fresh:
            data = None
        return replace(previous, polled=True, up=False, poll_duration=duration, last_error=error.describe(), data=data)

    # -- single reads (each returns its result or the ArmError; never raises) ----------------------
    def _read_runtime_view(self, ref: PoolRef) -> Outcome[model.RuntimeView]:
        return _attempt(lambda: model.parse_runtime_view(
            self._client.get(f"{pool_path(ref)}/runtimeViews/latest", self._versions["standby_pool"], operation="runtime_view",
                             subscription_id=ref.subscription_id),
            model.POOL_STATES[ref.kind],
        ), "runtime_view")

    def _list_pool_resources(self, ref: PoolRef) -> Outcome[list[model.Pool]]:
        """Every pool of this kind in the pool's resource group: one paged list instead of a GET per pool."""
        path = f"{resource_group_path(ref.subscription_id, ref.resource_group)}/{_PROVIDERS[ref.kind]}"
        return _attempt(lambda: [
            model.parse_pool(item)
            for item in self._client.iter_list(path, self._versions["standby_pool"], operation="pool_list", subscription_id=ref.subscription_id)
        ], "pool_list")

    def _list_container_groups(self, subscription_id: str, resource_group: str) -> Outcome[list[model.MemberSummary]]:
        return _attempt(lambda: [
            model.parse_member_summary(item)
            for item in self._client.iter_list(container_groups_path(subscription_id, resource_group), self._versions["container_instance"],
                                          operation="container_group_list", subscription_id=subscription_id)
        ], "container_group_list")

    def _read_container_group(self, ref: PoolRef, name: str) -> Outcome[model.Member]:
        return _attempt(lambda: model.parse_member(
            self._client.get(f"{container_groups_path(ref.subscription_id, ref.resource_group)}/{_segment(name)}",
                             self._versions["container_instance"], operation="container_group", subscription_id=ref.subscription_id)
        ), "container_group")

    def _list_virtual_machines(self, ref: PoolRef) -> Outcome[list[model.VirtualMachineRef]]:
        return _attempt(lambda: [
            model.parse_virtual_machine_ref(item)
            for item in self._client.iter_list(f"{pool_path(ref)}/standbyVirtualMachines", self._versions["standby_pool"],
                                          operation="vm_list", subscription_id=ref.subscription_id)
        ], "vm_list")

    def _read_virtual_machine(self, subscription_id: str, vm: model.VirtualMachineRef, pool_vm_state: str | None) -> Outcome[model.Member]:
        return _attempt(lambda: model.parse_virtual_machine(
            self._client.get(f"{_resource_url_path(vm.resource_id)}/instanceView", self._versions["compute"], operation="vm_instance_view",
                             subscription_id=subscription_id),
            vm.name, pool_vm_state,
        ), "vm_instance_view")


def _attempt(read: Callable[[], T], operation: str) -> Outcome[T]:
    try:
        return read()
    except ArmError as error:
        return error
    except model.ModelError as error:
        return ArmError(ErrorKind.BAD_RESPONSE, str(error), operation=operation)
    except Exception as error:  # a parser bug must cost one pool one cycle, never the whole snapshot
        log.error("unexpected error while reading ARM", exc_info=True, extra={"operation": operation})
        return ArmError(ErrorKind.BAD_RESPONSE, f"unexpected {type(error).__name__} while parsing", operation=operation)


def _unwrap(outcome: Outcome[T]) -> T:
    if isinstance(outcome, ArmError):
        raise outcome
    return outcome
