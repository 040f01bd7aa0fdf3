"""Background polling: each cycle reads ARM and swaps in a new immutable :class:`Snapshot` in one step.

A scrape only ever reads ``Poller.snapshot``; it never sees half a cycle and never calls ARM.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobExecutionEvent
from apscheduler.schedulers.background import BackgroundScheduler

from . import model
from .arm import ArmClient, ArmError, ErrorKind
from .armstats import ArmStats, ArmStatsSnapshot
from .config import PoolRef, Settings

log = logging.getLogger(__name__)

_PROVIDER_CG_POOLS = "providers/Microsoft.StandbyPool/standbyContainerGroupPools"
_PROVIDER_CONTAINER_GROUPS = "providers/Microsoft.ContainerInstance/containerGroups"


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

    @property
    def ready(self) -> bool:
        """Every pool has been polled at least once (successfully or not)."""
        return all(status.polled for status in self.pools)


def _pool_path(ref: PoolRef) -> str:
    return f"/subscriptions/{ref.subscription_id}/resourceGroups/{ref.resource_group}/{_PROVIDER_CG_POOLS}/{ref.name}"


def _container_groups_path(subscription_id: str, resource_group: str) -> str:
    return f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}/{_PROVIDER_CONTAINER_GROUPS}"


class Poller:
    """Polls every configured pool on a schedule and publishes snapshots."""

    def __init__(
        self,
        settings: Settings,
        client: ArmClient,
        stats: ArmStats,
        *,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._client = client
        self._stats = stats
        self._now = wall_clock
        self._versions = settings.azure.api_versions
        self._executor = ThreadPoolExecutor(max_workers=settings.polling.concurrency, thread_name_prefix="poll")
        self._scheduler: BackgroundScheduler | None = None
        self._skipped = 0
        self._cycle_lock = threading.Lock()
        self.on_publish: Callable[[Snapshot], None] = lambda snapshot: None
        self.snapshot = Snapshot(
            pools=tuple(PoolStatus(ref) for ref in settings.pools),
            arm=ArmStatsSnapshot(),
            interval=settings.polling.interval,
        )

    # -- scheduling -------------------------------------------------------------------------------
    def start(self) -> None:
        """Poll now, then every ``polling.interval``; an overlapping cycle is skipped and counted."""
        scheduler = BackgroundScheduler(daemon=True, job_defaults={"coalesce": True, "max_instances": 1})
        scheduler.add_listener(self._on_skipped, EVENT_JOB_MAX_INSTANCES)
        scheduler.add_job(
            self.poll_once,
            "interval",
            seconds=self._settings.polling.interval,
            next_run_time=datetime.now(timezone.utc),
            misfire_grace_time=max(1, int(self._settings.polling.interval)),
            id="poll",
        )
        scheduler.start()
        self._scheduler = scheduler

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _on_skipped(self, event: JobExecutionEvent) -> None:
        self._skipped += 1
        log.warning("poll cycle skipped: the previous one is still running", extra={"skipped_total": self._skipped})

    # -- one cycle --------------------------------------------------------------------------------
    def poll_once(self) -> Snapshot:
        """Run one full cycle and swap in its snapshot."""
        with self._cycle_lock:
            previous = {status.ref.key: status for status in self.snapshot.pools}
            member_lists = self._list_member_candidates(self._settings.pools)
            statuses = list(
                self._executor.map(
                    lambda ref: self._poll_pool(ref, previous.get(ref.key, PoolStatus(ref)), member_lists),
                    self._settings.pools,
                )
            )
            snapshot = Snapshot(
                pools=tuple(statuses), arm=self._stats.snapshot(), interval=self._settings.polling.interval,
                cycles_skipped=self._skipped,
            )
            self.snapshot = snapshot
            self.on_publish(snapshot)
            return snapshot

    def _list_member_candidates(
        self, refs: Iterable[PoolRef]
    ) -> dict[tuple[str, str], list[model.MemberSummary] | ArmError]:
        """One paged container-group list per resource group, shared by its pools."""
        groups: dict[tuple[str, str], PoolRef] = {}
        for ref in refs:
            groups.setdefault((ref.subscription_id.lower(), ref.resource_group.lower()), ref)

        def read(ref: PoolRef) -> list[model.MemberSummary] | ArmError:
            try:
                items = self._client.list(
                    _container_groups_path(ref.subscription_id, ref.resource_group),
                    self._versions["container_instance"],
                    operation="container_group_list",
                    subscription_id=ref.subscription_id,
                )
                return [model.parse_member_summary(item) for item in items]
            except ArmError as error:
                return error
            except model.ModelError as error:
                return ArmError(ErrorKind.BAD_RESPONSE, str(error), operation="container_group_list")

        results = self._executor.map(read, groups.values())
        return dict(zip(groups, results))

    def _poll_pool(
        self,
        ref: PoolRef,
        previous: PoolStatus,
        member_lists: dict[tuple[str, str], list[model.MemberSummary] | ArmError],
    ) -> PoolStatus:
        started = time.monotonic()
        try:
            data = self._read_pool(ref, member_lists[(ref.subscription_id.lower(), ref.resource_group.lower())])
        except (ArmError, model.ModelError) as exc:
            error = exc if isinstance(exc, ArmError) else ArmError(ErrorKind.BAD_RESPONSE, str(exc))
            return self._failed(previous, error, time.monotonic() - started)
        return replace(
            previous, polled=True, up=True, last_success=self._now(), poll_duration=time.monotonic() - started,
            last_error=None, data=data,
        )

    def _read_pool(self, ref: PoolRef, candidates: list[model.MemberSummary] | ArmError) -> PoolData:
        path = _pool_path(ref)
        version = self._versions["standby_pool"]
        sub = ref.subscription_id
        runtime = model.parse_runtime_view(
            self._client.get(f"{path}/runtimeViews/latest", version, operation="runtime_view", subscription_id=sub)
        )
        pool = model.parse_pool(self._client.get(path, version, operation="pool", subscription_id=sub))
        if isinstance(candidates, ArmError):
            raise candidates
        members = tuple(
            model.parse_member(
                self._client.get(
                    f"{_container_groups_path(sub, ref.resource_group)}/{candidate.name}",
                    self._versions["container_instance"],
                    operation="container_group",
                    subscription_id=sub,
                )
            )
            for candidate in sorted(candidates, key=lambda c: c.name)
            if model.is_member(candidate.name, ref.name)
        )
        return PoolData(pool=pool, runtime=runtime, members=members)

    def _failed(self, previous: PoolStatus, error: ArmError, duration: float) -> PoolStatus:
        ref = previous.ref
        log.warning(
            "pool poll failed",
            extra={
                "subscription_id": ref.subscription_id, "resource_group": ref.resource_group, "pool": ref.name,
                "kind": error.kind, "code": error.code or "", "request_id": error.request_id or "",
                "operation": error.operation, "error": error.message,
            },
        )
        data = previous.data
        fresh = previous.last_success is not None and self._now() - previous.last_success < self._settings.polling.stale_after
        if error.kind == ErrorKind.NOT_FOUND or not fresh:
            data = None
        return replace(previous, polled=True, up=False, poll_duration=duration, last_error=error.describe(), data=data)
