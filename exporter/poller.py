"""Background polling: each cycle reads ARM and swaps in a new immutable :class:`Snapshot` in one step.

A scrape only ever reads the published snapshot; it never sees half a cycle and never calls ARM.

A cycle runs in two waves on one bounded pool of workers (``polling.concurrency``), so its wall time
is set by latency and the read budget, not by the number of pools:

1. every runtime view; the paged pool list of each resource group (and kind) whose pool resources
   are due (``polling.pool_refresh``); one paged container-group list per resource group; the
   ``standbyVirtualMachines`` list of each VM pool;
   then, for each VM pool's attached scale set, one paged
   ``GET .../virtualMachines?$filter='virtualMachineScaleSet/id' eq '{id}'&$expand=instanceView``: the instance
   view of every VM in the scale set, pooled ones included, so a pooled VM's power state and
   ``isVMInStandbyPool`` are fresh every cycle without a read of their own;
2. the detail GET of every member that is due and not covered by its scale set's list: new, failed last time,
   changed state in the list, or not ready; and, oldest first, members read longer than ``polling.member_refresh`` ago, at most the share
   that spreads all of them evenly over that period (members x interval / member_refresh per cycle).

A pool's three parts are kept or fail on their own: the runtime view (``up``), the pool resource from its
resource group's pool list (``resource_up``) and the members (``members_up``, ``member_read_failures``).
A part whose read failed keeps its last good values until ``polling.stale_after`` (the pool resource:
``pool_refresh`` + ``stale_after`` after its last list read), then only that part drops out. A malformed
list item costs only itself and is named in one log line the first time it is seen.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, TypeVar

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobExecutionEvent
from apscheduler.schedulers.background import BackgroundScheduler

from . import model
from .arm import ArmClient, ArmError, ErrorKind
from .armstats import ArmStats, ArmStatsSnapshot
from .config import PoolRef, Settings
from .resources import container_group_path, container_groups_path, missing_role_hint, pool_collection_path, pool_path, resource_url_path
from .snapshot import MEMBER_LIST, MEMBERS, POOL_RESOURCE, RUNTIME_VIEW, PartError, PoolData, PoolStatus, Snapshot

log = logging.getLogger(__name__)

T = TypeVar("T")
Outcome = T | ArmError  # a read's result, or why it failed

@dataclass(frozen=True)
class _Candidate:
    key: str  # lower-cased resource path
    name: str
    listed_state: str  # provisioningState as the list shows it
    read: Callable[[], Outcome[model.Member]]
    bulk: bool = False  # a VM whose instance view came in its scale set's list: ``read`` is pure, run every cycle


@dataclass(frozen=True)
class _CachedMember:
    member: model.Member
    listed_state: str  # provisioningState in the list when the details were read
    read_at: float  # monotonic time of the last successful detail read
    failed: bool = False  # the latest detail read failed: read again next cycle


@dataclass(frozen=True)
class _ResourcePart:
    """A pool's resource this cycle: kept while not stale, fresh within pool_refresh, and this cycle's failure."""

    pool: model.Pool | None
    fresh: bool
    error: ArmError | None


class WarnOnce:
    """A bounded memory of the malformed list items already logged, so each is named once and not every cycle."""

    def __init__(self, limit: int = 4096) -> None:
        self._limit = limit
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def first_time(self, key: str) -> bool:
        with self._lock:
            if key in self._seen:
                self._seen.move_to_end(key)
                return False
            self._seen[key] = None
            if len(self._seen) > self._limit:
                self._seen.popitem(last=False)
            return True


@dataclass(frozen=True)
class _MemberOutcome:
    """One pool's members this cycle: those to publish, and the detail reads that failed."""

    members: tuple[model.Member, ...]
    failures: int
    first_error: ArmError | None  # the first failed detail read, naming the member


def shard_of(ref: PoolRef, count: int) -> int:
    """Stable shard of a pool: sha256 of its lower-cased resource id, modulo ``count``."""
    digest = hashlib.sha256(pool_path(ref).lower().encode()).digest()
    return int.from_bytes(digest[:8], "big") % count


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
        self._member_keys: dict[tuple[str, str, str, str], frozenset[str]] = {}  # pool -> member keys of its last good list
        self._members_read_at: dict[tuple[str, str, str, str], float] = {}  # pool -> last good member list read (monotonic)
        self._warned = WarnOnce()
        self.on_publish: Callable[[Snapshot], None] = lambda snapshot: None
        refs = self.pools()
        self.snapshot = Snapshot(pools=tuple(PoolStatus(ref) for ref in refs), arm=ArmStatsSnapshot(), interval=settings.polling.interval,
                                 subscriptions=self._subscriptions(refs))

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

    def _list_pools(self, subscription_id: str, kind: model.PoolKind) -> Outcome[list[model.ListedPool]]:
        path = pool_collection_path(subscription_id, None, kind)
        return _attempt(lambda: self._parse_items(
            self._client.iter_list(path, self._versions["standby_pool"], operation="pool_list", subscription_id=subscription_id),
            model.parse_listed_pool, "pool_list", path,
        ), "pool_list")

    def _parse_items(self, items: Iterator[object], parse: Callable[[object], T], operation: str, path: str) -> list[T]:
        """Every well-formed item of a list; a malformed one costs only itself, logged the first time it is seen."""
        parsed: list[T] = []
        for item in items:
            try:
                parsed.append(parse(item))
            except model.ModelError as error:
                name = model.item_name(item)
                if self._warned.first_time(f"{operation}\n{path}\n{name}\n{error}"):
                    log.warning("malformed list item skipped", extra={"operation": operation, "list": path, "item": name, "error": str(error)})
        return parsed

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
            scale_sets = self._list_scale_sets(refs, pools)
            candidates = {ref.key: self._candidates(ref, wave, pools[ref.key].pool, scale_sets) for ref in refs}
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
                cycles=self.snapshot.cycles + 1, subscriptions=self._subscriptions(refs),
            )
            self.snapshot = snapshot
        try:
            self.on_publish(snapshot)
        except Exception:  # keep polling; the last good exposition stays served
            log.error("publishing the snapshot failed", exc_info=True)
        return snapshot

    def _subscriptions(self, refs: Iterable[PoolRef]) -> tuple[str, ...]:
        """Subscriptions of the configured and polled pools and of discovery, sorted."""
        discovery = self._settings.discovery
        subscriptions = {ref.subscription_id for ref in (*self._settings.pools, *refs)}
        subscriptions.update(() if discovery is None else discovery.subscriptions)
        return tuple(sorted(subscriptions))

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
            due = cached is None or now - cached[1] >= self._settings.polling.pool_refresh or ref.name.lower() not in cached[0]
            if due and ("pools", pools_key) not in wave:
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

    def _resolve_pool(self, ref: PoolRef, wave: dict[tuple[str, object], Future]) -> _ResourcePart:
        """The pool resource from its resource group's pool list (read this cycle or cached), kept while not stale."""
        pools_key = _pools_key(ref)
        job = wave.get(("pools", pools_key))
        error = outcome if job is not None and isinstance(outcome := job.result(), ArmError) else None
        cached = self._pool_cache.get(pools_key)
        if cached is None:
            return _ResourcePart(None, False, error)
        listed, read_at = cached
        pool = listed.get(ref.name.lower())
        if pool is None:
            return _ResourcePart(None, False, error or ArmError(
                ErrorKind.NOT_FOUND, "pool is not in its resource group's pool list (or its item there is malformed)", operation="pool_list"))
        polling = self._settings.polling
        age = self._monotonic() - read_at
        if age >= polling.pool_refresh + polling.stale_after:
            return _ResourcePart(None, False, error)
        return _ResourcePart(pool, age < polling.pool_refresh, error)

    def _list_scale_sets(self, refs: Iterable[PoolRef], pools: dict[tuple[str, str, str, str], _ResourcePart]) -> dict[str, Future]:
        """One paged VM list with instance views per attached scale set of the VM pools (shared by pools on the same one)."""
        lists: dict[str, Future] = {}
        for ref in refs:
            pool = pools[ref.key].pool
            if ref.kind == "virtual_machine" and pool is not None and pool.scale_set_id and pool.scale_set_id.lower() not in lists:
                lists[pool.scale_set_id.lower()] = self._executor.submit(self._list_scale_set_vms, ref.subscription_id, pool.scale_set_id)
        return lists

    def _candidates(self, ref: PoolRef, wave: dict[tuple[str, object], Future], pool: model.Pool | None,
                    scale_sets: dict[str, Future]) -> Outcome[list[_Candidate]]:
        """Each member the lists show, with its cache key, its state in the list and its detail read."""
        if ref.kind == "container_group":
            listed = wave[("list", _group(ref))].result()
            if isinstance(listed, ArmError):
                return listed
            return [
                _Candidate(container_group_path(ref.subscription_id, ref.resource_group, summary.name).lower(), summary.name,
                           summary.provisioning_state, functools.partial(self._read_container_group, ref, summary.name))
                for summary in listed if model.is_member(summary.name, ref.name)
            ]
        vms = wave[("vms", ref.key)].result()
        if isinstance(vms, ArmError):
            return vms
        vm_state = None if pool is None else pool.virtual_machine_state
        listed = scale_sets.get((pool.scale_set_id or "").lower()) if pool is not None else None
        views = listed.result() if listed is not None else {}
        views = {} if isinstance(views, ArmError) else views
        candidates = []
        for vm in vms:
            view = views.get(vm.resource_id.lower())
            if view is not None:  # fresh from the scale set's list; no read of its own
                read = functools.partial(_attempt, functools.partial(model.parse_virtual_machine, view, vm.name, vm_state), "vm_scale_set_list")
                candidates.append(_Candidate(vm.resource_id.lower(), vm.name, vm.provisioning_state, read, bulk=True))
            else:  # not in the list, or its instance view lacks the fields: the per-VM instance view
                candidates.append(_Candidate(vm.resource_id.lower(), vm.name, vm.provisioning_state,
                                             functools.partial(self._read_virtual_machine, ref.subscription_id, vm, vm_state)))
        return candidates

    def _read_due_members(self, candidates: dict[tuple[str, str, str, str], Outcome[list[_Candidate]]]) -> dict[str, Future]:
        """Submit one detail GET per member that is new, failed last time, changed in the list or not ready, and per
        aged member up to this cycle's share of the refresh period, oldest first."""
        reads: dict[str, Future] = {}
        aged: list[tuple[float, _Candidate]] = []
        now = self._monotonic()
        polling = self._settings.polling
        listed = [c for outcome in candidates.values() if not isinstance(outcome, ArmError) for c in outcome]
        for candidate in listed:
            if candidate.bulk:
                if candidate.key not in reads:
                    done: Future[Outcome[model.Member]] = Future()
                    done.set_result(candidate.read())
                    reads[candidate.key] = done
                continue
            cached = self._member_cache.get(candidate.key)
            if cached is None or cached.failed or cached.listed_state != candidate.listed_state or not cached.member.ready:
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
        resource: _ResourcePart,
        candidates: Outcome[list[_Candidate]],
        reads: dict[str, Future],
        started: float,
    ) -> PoolStatus:
        """Combine the reads of one pool into its status: each part is kept or fails on its own."""
        ref, now, stale_after = previous.ref, self._now(), self._settings.polling.stale_after
        kept = previous.data or PoolData(None, None, None)
        errors: list[tuple[str, ArmError]] = []
        if isinstance(runtime, ArmError):
            errors.append((RUNTIME_VIEW, runtime))
            fresh = previous.last_success is not None and now - previous.last_success < stale_after
            view = kept.runtime if fresh and runtime.kind != ErrorKind.NOT_FOUND else None
            last_success = previous.last_success
        else:
            view, last_success = runtime, now
        if resource.error is not None:
            errors.append((POOL_RESOURCE, resource.error))
        if isinstance(candidates, ArmError):
            errors.append((MEMBER_LIST, candidates))
            read_at = self._members_read_at.get(ref.key)
            members = kept.members if read_at is not None and self._monotonic() - read_at < stale_after else None
            failures = previous.member_read_failures if members is not None else 0
        else:
            outcome = self._members(candidates, reads)
            self._members_read_at[ref.key] = self._monotonic()
            self._member_keys[ref.key] = frozenset(candidate.key for candidate in candidates)
            members, failures = outcome.members, outcome.failures
            if outcome.first_error is not None:
                errors.append((MEMBERS, outcome.first_error))
        part_errors = tuple(PartError(part, error.describe()) for part, error in errors)
        for part, error in errors:
            self._log_failure(ref, part, error, failures)
        data = PoolData(pool=resource.pool, runtime=view, members=members)
        gone = isinstance(runtime, ArmError) and runtime.kind == ErrorKind.NOT_FOUND  # the pool itself: drop every part
        return replace(
            previous, polled=True, up=not isinstance(runtime, ArmError), last_success=last_success,
            poll_duration=self._monotonic() - started,
            last_error="; ".join(f"{error.part}: {error.error}" for error in part_errors) or None,
            data=None if data == PoolData(None, None, None) or gone else data,
            resource_up=resource.fresh and not gone, members_up=not isinstance(candidates, ArmError), member_read_failures=failures,
            errors=part_errors,
        )

    def _members(self, candidates: list[_Candidate], reads: dict[str, Future]) -> _MemberOutcome:
        """The listed members to publish: read this cycle or cached, kept until stale after a failed read; gone on 404."""
        now, stale_after = self._monotonic(), self._settings.polling.stale_after
        members: list[model.Member] = []
        failures, first_error = 0, None
        for candidate in candidates:
            cached = self._member_cache.get(candidate.key)
            job = reads.get(candidate.key)
            if job is not None:
                outcome = job.result()
                if isinstance(outcome, ArmError) and outcome.kind == ErrorKind.NOT_FOUND:
                    self._member_cache.pop(candidate.key, None)
                    continue  # handed out or deleted between the list and the read
                if isinstance(outcome, ArmError):
                    failures += 1
                    if first_error is None:
                        first_error = ArmError(outcome.kind, f"{candidate.name}: {outcome.message}", status=outcome.status, code=outcome.code,
                                               request_id=outcome.request_id, operation=outcome.operation)
                    if cached is not None:
                        cached = self._member_cache[candidate.key] = replace(cached, failed=True)
                else:
                    cached = self._member_cache[candidate.key] = _CachedMember(outcome, candidate.listed_state, now)
            if cached is not None and (not cached.failed or now - cached.read_at < stale_after):
                members.append(cached.member)  # a member not due for a refresh is as fresh as its list
        return _MemberOutcome(tuple(sorted(members, key=lambda m: m.name)), failures, first_error)

    def _forget_unlisted(self, refs: Iterable[PoolRef], candidates: dict[tuple[str, str, str, str], Outcome[list[_Candidate]]]) -> None:
        """Drop cached pools and members no longer polled or listed, so memory follows the estate; a pool whose
        member list failed keeps its members' cache until the list is read again."""
        keys = {ref.key for ref in refs}
        groups = {_pools_key(ref) for ref in refs}
        self._pool_cache = {key: value for key, value in self._pool_cache.items() if key in groups}
        self._member_keys = {key: value for key, value in self._member_keys.items() if key in keys}
        self._members_read_at = {key: value for key, value in self._members_read_at.items() if key in keys}
        listed = set().union(*self._member_keys.values())
        self._member_cache = {key: value for key, value in self._member_cache.items() if key in listed}

    def _log_failure(self, ref: PoolRef, part: str, error: ArmError, member_failures: int) -> None:
        fields: dict[str, object] = {
            "subscription_id": ref.subscription_id, "resource_group": ref.resource_group, "pool": ref.name, "pool_kind": ref.kind,
            "part": part, "kind": error.kind, "code": error.code or "", "request_id": error.request_id or "",
            "operation": error.operation, "error": error.message,
        }
        if part == MEMBERS:
            fields["member_read_failures"] = member_failures
        if error.kind == ErrorKind.FORBIDDEN:
            fields["hint"] = missing_role_hint(error.operation, ref.kind)
        log.warning("pool part read failed", extra=fields)

    # -- single reads (each returns its result or the ArmError; never raises) ----------------------
    def _read_runtime_view(self, ref: PoolRef) -> Outcome[model.RuntimeView]:
        return _attempt(lambda: model.parse_runtime_view(
            self._client.get(f"{pool_path(ref)}/runtimeViews/latest", self._versions["standby_pool"], operation="runtime_view",
                             subscription_id=ref.subscription_id),
            model.POOL_STATES[ref.kind],
        ), "runtime_view")

    def _list_pool_resources(self, ref: PoolRef) -> Outcome[list[model.Pool]]:
        """Every pool of this kind in the pool's resource group: one paged list instead of a GET per pool."""
        path = pool_collection_path(ref.subscription_id, ref.resource_group, ref.kind)
        return _attempt(lambda: self._parse_items(
            self._client.iter_list(path, self._versions["standby_pool"], operation="pool_list", subscription_id=ref.subscription_id),
            model.parse_pool, "pool_list", path,
        ), "pool_list")

    def _list_container_groups(self, subscription_id: str, resource_group: str) -> Outcome[list[model.MemberSummary]]:
        path = container_groups_path(subscription_id, resource_group)
        return _attempt(lambda: self._parse_items(
            self._client.iter_list(path, self._versions["container_instance"], operation="container_group_list",
                                   subscription_id=subscription_id),
            model.parse_member_summary, "container_group_list", path,
        ), "container_group_list")

    def _read_container_group(self, ref: PoolRef, name: str) -> Outcome[model.Member]:
        return _attempt(lambda: model.parse_member(
            self._client.get(container_group_path(ref.subscription_id, ref.resource_group, name),
                             self._versions["container_instance"], operation="container_group", subscription_id=ref.subscription_id)
        ), "container_group")

    def _list_virtual_machines(self, ref: PoolRef) -> Outcome[list[model.VirtualMachineRef]]:
        path = f"{pool_path(ref)}/standbyVirtualMachines"
        return _attempt(lambda: self._parse_items(
            self._client.iter_list(path, self._versions["standby_pool"], operation="vm_list", subscription_id=ref.subscription_id),
            model.parse_virtual_machine_ref, "vm_list", path,
        ), "vm_list")

    def _list_scale_set_vms(self, subscription_id: str, scale_set_id: str) -> Outcome[dict[str, Mapping[str, Any]]]:
        """Instance views of the scale set's VMs by lower-cased resource id (those lacking the needed fields left out)."""
        group = scale_set_id.split("/")
        path = f"/subscriptions/{group[2]}/resourceGroups/{group[4]}/providers/Microsoft.Compute/virtualMachines"
        query = {"$filter": f"'virtualMachineScaleSet/id' eq '{scale_set_id}'", "$expand": "instanceView"}

        def read() -> dict[str, Mapping[str, Any]]:
            items = self._client.iter_list(path, self._versions["compute"], operation="vm_scale_set_list",
                                           subscription_id=subscription_id, query=query)
            return {vm_id: view for vm_id, view in self._parse_items(items, model.parse_scale_set_vm, "vm_scale_set_list", path)
                    if view is not None}
        return _attempt(read, "vm_scale_set_list")

    def _read_virtual_machine(self, subscription_id: str, vm: model.VirtualMachineRef, pool_vm_state: str | None) -> Outcome[model.Member]:
        return _attempt(lambda: model.parse_virtual_machine(
            self._client.get(f"{resource_url_path(vm.resource_id)}/instanceView", self._versions["compute"], operation="vm_instance_view",
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
