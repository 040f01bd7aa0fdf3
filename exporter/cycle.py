"""One poll cycle: the reads of every pool in two waves on the bounded workers, and what each part keeps.

1. every runtime view; the paged pool list of each resource group (and kind) whose pool resources are
   due (``polling.pool_refresh``); one paged container-group list per resource group; the
   ``standbyVirtualMachines`` list of each VM pool; then, for each VM pool's attached scale set, one paged
   ``GET .../virtualMachines?$filter='virtualMachineScaleSet/id' eq '{id}'&$expand=instanceView``: the instance
   view of every VM in the scale set, pooled ones included, so a pooled VM's power state and
   ``isVMInStandbyPool`` are fresh every cycle without a read of their own;
2. the detail GET of every member that is due and not covered by its scale set's list: new, failed last
   time, changed state in the list, or not ready; and, oldest first, members read longer than
   ``polling.member_refresh`` ago, at most the share that spreads all of them evenly over that period
   (members x interval / member_refresh per cycle).

A pool's three parts are kept or fail on their own: the runtime view (``up``), the pool resource from its
resource group's pool list (``resource_up``) and the members (``members_up``, ``member_read_failures``).
A part whose read failed keeps its last good values until ``polling.stale_after`` (the pool resource:
``pool_refresh`` + ``stale_after`` after its last list read), then only that part drops out.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field, replace
from typing import Any

from . import model
from .arm import ArmError, ErrorKind
from .config import PollingSettings, PoolRef
from .reads import ArmReads, Outcome, attempt
from .resources import container_group_path, missing_role_hint
from .snapshot import MEMBER_LIST, MEMBERS, POOL_RESOURCE, RUNTIME_VIEW, PartError, PoolData, PoolStatus

log = logging.getLogger("exporter.poller")

PoolKey = tuple[str, str, str, str]  # PoolRef.key
PoolsKey = tuple[str, str, str]  # (subscription, resource group, kind): one pool list
GroupKey = tuple[str, str]  # (subscription, resource group): one container group list


def _pools_key(ref: PoolRef) -> PoolsKey:
    return (ref.subscription_id.lower(), ref.resource_group.lower(), ref.kind)


def _group(ref: PoolRef) -> GroupKey:
    return (ref.subscription_id.lower(), ref.resource_group.lower())


@dataclass
class Wave:
    """The first wave's reads in flight, by what they read."""

    runtime_views: dict[PoolKey, Future[Outcome[model.RuntimeView]]] = field(default_factory=dict)
    pool_lists: dict[PoolsKey, Future[Outcome[list[model.Pool]]]] = field(default_factory=dict)
    container_group_lists: dict[GroupKey, Future[Outcome[list[model.MemberSummary]]]] = field(default_factory=dict)
    vm_lists: dict[PoolKey, Future[Outcome[list[model.VirtualMachineRef]]]] = field(default_factory=dict)


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


@dataclass(frozen=True)
class _MemberOutcome:
    """One pool's members this cycle: those to publish, and the detail reads that failed."""

    members: tuple[model.Member, ...]
    failures: int
    first_error: ArmError | None  # the first failed detail read, naming the member


class PoolResources:
    """Pool resources from one paged list per resource group and kind, cached for ``polling.pool_refresh``."""

    def __init__(self, monotonic: Callable[[], float]) -> None:
        self._monotonic = monotonic
        self._lists: dict[PoolsKey, tuple[dict[str, model.Pool], float]] = {}  # -> (pools by lower-cased name, read at)

    def __len__(self) -> int:
        return len(self._lists)

    def due(self, ref: PoolRef, polling: PollingSettings) -> bool:
        cached = self._lists.get(_pools_key(ref))
        return cached is None or self._monotonic() - cached[1] >= polling.pool_refresh or ref.name.lower() not in cached[0]

    def store(self, lists: Mapping[PoolsKey, Future[Outcome[list[model.Pool]]]]) -> None:
        """Cache the pool lists read this cycle (the failed ones are read again next cycle)."""
        for pools_key, job in lists.items():
            if not isinstance(outcome := job.result(), ArmError):
                self._lists[pools_key] = ({pool.name.lower(): pool for pool in outcome}, self._monotonic())

    def resolve(self, ref: PoolRef, lists: Mapping[PoolsKey, Future[Outcome[list[model.Pool]]]], polling: PollingSettings) -> _ResourcePart:
        """The pool resource from its resource group's pool list (read this cycle or cached), kept while not stale."""
        pools_key = _pools_key(ref)
        job = lists.get(pools_key)
        error = outcome if job is not None and isinstance(outcome := job.result(), ArmError) else None
        cached = self._lists.get(pools_key)
        if cached is None:
            return _ResourcePart(None, False, error)
        listed, read_at = cached
        pool = listed.get(ref.name.lower())
        if pool is None:
            return _ResourcePart(None, False, error or ArmError(
                ErrorKind.NOT_FOUND, "pool is not in its resource group's pool list (or its item there is malformed)", operation="pool_list"))
        age = self._monotonic() - read_at
        if age >= polling.pool_refresh + polling.stale_after:
            return _ResourcePart(None, False, error)
        return _ResourcePart(pool, age < polling.pool_refresh, error)

    def forget(self, refs: Iterable[PoolRef]) -> None:
        groups = {_pools_key(ref) for ref in refs}
        self._lists = {key: value for key, value in self._lists.items() if key in groups}


class Members:
    """Member details read when due, cached per member, kept until stale after a failed read."""

    def __init__(self, monotonic: Callable[[], float]) -> None:
        self._monotonic = monotonic
        self._cache: dict[str, _CachedMember] = {}
        self._keys: dict[PoolKey, frozenset[str]] = {}  # pool -> member keys of its last good list
        self._listed_at: dict[PoolKey, float] = {}  # pool -> last good member list read (monotonic)

    def __len__(self) -> int:
        return len(self._cache)

    def submit_due(self, candidates: Iterable[_Candidate], executor: Executor, polling: PollingSettings) -> dict[str, Future[Outcome[model.Member]]]:
        """One detail GET per member that is new, failed last time, changed in the list or not ready, and per aged
        member up to this cycle's share of the refresh period, oldest first."""
        reads: dict[str, Future[Outcome[model.Member]]] = {}
        aged: list[tuple[float, _Candidate]] = []
        now = self._monotonic()
        listed = list(candidates)
        for candidate in listed:
            if candidate.bulk:
                if candidate.key not in reads:
                    done: Future[Outcome[model.Member]] = Future()
                    done.set_result(candidate.read())
                    reads[candidate.key] = done
                continue
            cached = self._cache.get(candidate.key)
            if cached is None or cached.failed or cached.listed_state != candidate.listed_state or not cached.member.ready:
                if candidate.key not in reads:
                    reads[candidate.key] = executor.submit(candidate.read)
            elif now - cached.read_at >= polling.member_refresh:
                aged.append((cached.read_at, candidate))
        share = math.ceil(len(listed) * polling.interval / polling.member_refresh)
        for _, candidate in sorted(aged, key=lambda item: item[0])[:share]:
            if candidate.key not in reads:
                reads[candidate.key] = executor.submit(candidate.read)
        return reads

    def listed(self, ref: PoolRef, candidates: list[_Candidate], reads: Mapping[str, Future[Outcome[model.Member]]],
               stale_after: float) -> _MemberOutcome:
        """The listed members to publish: read this cycle or cached, kept until stale after a failed read; gone on 404."""
        now = self._monotonic()
        self._listed_at[ref.key] = now
        self._keys[ref.key] = frozenset(candidate.key for candidate in candidates)
        members: list[model.Member] = []
        failures, first_error = 0, None
        for candidate in candidates:
            cached = self._cache.get(candidate.key)
            job = reads.get(candidate.key)
            if job is not None:
                outcome = job.result()
                if isinstance(outcome, ArmError) and outcome.kind == ErrorKind.NOT_FOUND:
                    self._cache.pop(candidate.key, None)
                    continue  # handed out or deleted between the list and the read
                if isinstance(outcome, ArmError):
                    failures += 1
                    if first_error is None:
                        first_error = ArmError(outcome.kind, f"{candidate.name}: {outcome.message}", status=outcome.status, code=outcome.code,
                                               request_id=outcome.request_id, operation=outcome.operation)
                    if cached is not None:
                        cached = self._cache[candidate.key] = replace(cached, failed=True)
                else:
                    cached = self._cache[candidate.key] = _CachedMember(outcome, candidate.listed_state, now)
            if cached is not None and (not cached.failed or now - cached.read_at < stale_after):
                members.append(cached.member)  # a member not due for a refresh is as fresh as its list
        return _MemberOutcome(tuple(sorted(members, key=lambda m: m.name)), failures, first_error)

    def list_fresh(self, ref: PoolRef, stale_after: float) -> bool:
        """The pool's last good member list is younger than ``stale_after`` (its members may be kept)."""
        listed_at = self._listed_at.get(ref.key)
        return listed_at is not None and self._monotonic() - listed_at < stale_after

    def forget(self, refs: Iterable[PoolRef]) -> None:
        """Drop members of pools no longer polled or listed; a pool whose member list failed keeps its members'
        cache until the list is read again."""
        keys = {ref.key for ref in refs}
        self._keys = {key: value for key, value in self._keys.items() if key in keys}
        self._listed_at = {key: value for key, value in self._listed_at.items() if key in keys}
        listed = set().union(*self._keys.values())
        self._cache = {key: value for key, value in self._cache.items() if key in listed}


class Cycle:
    """Runs one cycle over the given pools and returns their statuses; keeps the caches between cycles."""

    def __init__(self, reads: ArmReads, *, wall_clock: Callable[[], float], monotonic: Callable[[], float]) -> None:
        self._reads = reads
        self._now = wall_clock
        self._monotonic = monotonic
        self.resources = PoolResources(monotonic)
        self.members = Members(monotonic)

    def run(self, refs: tuple[PoolRef, ...], previous: Mapping[PoolKey, PoolStatus], polling: PollingSettings,
            executor: Executor) -> tuple[PoolStatus, ...]:
        started = self._monotonic()
        wave = self._first_wave(refs, polling, executor)
        self.resources.store(wave.pool_lists)
        resources = {ref.key: self.resources.resolve(ref, wave.pool_lists, polling) for ref in refs}
        scale_sets = self._scale_set_lists(refs, resources, executor)
        candidates = {ref.key: self._candidates(ref, wave, resources[ref.key].pool, scale_sets) for ref in refs}
        listed = (c for outcome in candidates.values() if not isinstance(outcome, ArmError) for c in outcome)
        reads = self.members.submit_due(listed, executor, polling)
        statuses = tuple(
            self._assemble(previous.get(ref.key, PoolStatus(ref)), wave.runtime_views[ref.key].result(), resources[ref.key],
                           candidates[ref.key], reads, started, polling.stale_after)
            for ref in refs
        )
        self.resources.forget(refs)
        self.members.forget(refs)
        return statuses

    def _first_wave(self, refs: Iterable[PoolRef], polling: PollingSettings, executor: Executor) -> Wave:
        """Runtime views, due pool resources, member lists: all at once on the bounded workers."""
        reads, wave = self._reads, Wave()
        for ref in refs:
            wave.runtime_views[ref.key] = executor.submit(reads.runtime_view, ref)
            pools_key = _pools_key(ref)
            if pools_key not in wave.pool_lists and self.resources.due(ref, polling):
                wave.pool_lists[pools_key] = executor.submit(reads.pools_of_resource_group, ref)
            if ref.kind == model.PoolKind.CONTAINER_GROUP:
                group = _group(ref)
                if group not in wave.container_group_lists:
                    wave.container_group_lists[group] = executor.submit(reads.container_groups, ref.subscription_id, ref.resource_group)
            else:
                wave.vm_lists[ref.key] = executor.submit(reads.standby_virtual_machines, ref)
        return wave

    def _scale_set_lists(self, refs: Iterable[PoolRef], resources: Mapping[PoolKey, _ResourcePart],
                         executor: Executor) -> dict[str, Future[Outcome[dict[str, Mapping[str, Any]]]]]:
        """One paged VM list with instance views per attached scale set of the VM pools (shared by pools on the same one)."""
        lists: dict[str, Future[Outcome[dict[str, Mapping[str, Any]]]]] = {}
        for ref in refs:
            pool = resources[ref.key].pool
            if ref.kind == model.PoolKind.VIRTUAL_MACHINE and pool is not None and pool.scale_set_id and pool.scale_set_id.lower() not in lists:
                lists[pool.scale_set_id.lower()] = executor.submit(self._reads.scale_set_virtual_machines, ref.subscription_id, pool.scale_set_id)
        return lists

    def _candidates(self, ref: PoolRef, wave: Wave, pool: model.Pool | None,
                    scale_sets: Mapping[str, Future[Outcome[dict[str, Mapping[str, Any]]]]]) -> Outcome[list[_Candidate]]:
        """Each member the lists show, with its cache key, its state in the list and its detail read."""
        if ref.kind == model.PoolKind.CONTAINER_GROUP:
            groups = wave.container_group_lists[_group(ref)].result()
            if isinstance(groups, ArmError):
                return groups
            return [
                _Candidate(container_group_path(ref.subscription_id, ref.resource_group, summary.name).lower(), summary.name,
                           summary.provisioning_state, functools.partial(self._reads.container_group, ref, summary.name))
                for summary in groups if model.is_member(summary.name, ref.name)
            ]
        vms = wave.vm_lists[ref.key].result()
        if isinstance(vms, ArmError):
            return vms
        vm_state = None if pool is None else pool.virtual_machine_state
        listed = scale_sets.get((pool.scale_set_id or "").lower()) if pool is not None else None
        outcome = listed.result() if listed is not None else {}
        views = {} if isinstance(outcome, ArmError) else outcome
        candidates = []
        for vm in vms:
            view = views.get(vm.resource_id.lower())
            if view is not None:  # fresh from the scale set's list; no read of its own
                parse = functools.partial(model.parse_virtual_machine, view, vm.name, vm_state)
                candidates.append(_Candidate(vm.resource_id.lower(), vm.name, vm.provisioning_state,
                                             functools.partial(attempt, parse, "vm_scale_set_list"), bulk=True))
            else:  # not in the list, or its instance view lacks the fields: the per-VM instance view
                candidates.append(_Candidate(vm.resource_id.lower(), vm.name, vm.provisioning_state,
                                             functools.partial(self._reads.virtual_machine, ref.subscription_id, vm, vm_state)))
        return candidates

    def _assemble(self, previous: PoolStatus, runtime: Outcome[model.RuntimeView], resource: _ResourcePart,
                  candidates: Outcome[list[_Candidate]], reads: Mapping[str, Future[Outcome[model.Member]]], started: float,
                  stale_after: float) -> PoolStatus:
        """Combine the reads of one pool into its status: each part is kept or fails on its own."""
        ref, now = previous.ref, self._now()
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
            members = kept.members if self.members.list_fresh(ref, stale_after) else None
            failures = previous.member_read_failures if members is not None else 0
        else:
            outcome = self.members.listed(ref, candidates, reads, stale_after)
            members, failures = outcome.members, outcome.failures
            if outcome.first_error is not None:
                errors.append((MEMBERS, outcome.first_error))
        part_errors = tuple(PartError(part, error.describe()) for part, error in errors)
        for part, error in errors:
            _log_failure(ref, part, error, failures)
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


def _log_failure(ref: PoolRef, part: str, error: ArmError, member_failures: int) -> None:
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
