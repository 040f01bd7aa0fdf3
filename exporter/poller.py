"""Background polling: on a schedule, discover pools and run a cycle; swap in its immutable Snapshot in one step.

A scrape only ever reads the published snapshot; it never sees half a cycle and never calls ARM. What a
cycle reads and keeps is in :mod:`exporter.cycle`; each read in :mod:`exporter.reads`. Overlapping
cycles are skipped and counted, never stacked; discovery keeps its own clock across reloads.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobExecutionEvent
from apscheduler.schedulers.background import BackgroundScheduler

from . import model
from .arm import ArmClient, ArmError
from .armstats import ArmStats, ArmStatsSnapshot
from .config import PoolRef, Settings
from .cycle import Cycle
from .reads import ArmReads
from .resources import pool_path
from .snapshot import PoolStatus, Snapshot

log = logging.getLogger(__name__)


def shard_of(ref: PoolRef, count: int) -> int:
    """Stable shard of a pool: sha256 of its lower-cased resource id, modulo ``count``."""
    digest = hashlib.sha256(pool_path(ref).lower().encode()).digest()
    return int.from_bytes(digest[:8], "big") % count


def _discovery_interval(settings: Settings) -> float | None:
    return settings.discovery.interval if settings.discovery is not None else None


def _utcnow() -> datetime:
    return datetime.now(UTC)


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
        self._reads = ArmReads(client, lambda: self._settings.azure.api_versions)
        self.cycle = Cycle(self._reads, wall_clock=wall_clock, monotonic=monotonic)
        self.on_publish: Callable[[Snapshot], None] = lambda snapshot: None
        refs = self.pools()
        self.snapshot = Snapshot(pools=tuple(PoolStatus(ref) for ref in refs), arm=ArmStatsSnapshot(), interval=settings.polling.interval,
                                 subscriptions=self._subscriptions(refs), shard_index=settings.sharding.index,
                                 shard_count=settings.sharding.count)

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
                                    next_run_time=datetime.fromtimestamp(self._now() + discovery.interval, UTC))

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
            (sub, kind): self._executor.submit(self._reads.pools_of_subscription, sub, kind)
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
            found.setdefault(sub, []).extend(
                pool for pool in outcome if discovery.wants(PoolRef(pool.subscription_id, pool.resource_group, pool.name, pool.kind), pool.tags))
        with self._cycle_lock:
            for sub in discovery.subscriptions:
                if sub not in failed:
                    self._discovered[sub] = tuple(found.get(sub, ()))
            self._discovered_once = True
        log.info("discovery done", extra={"pools": sum(len(p) for p in self._discovered.values())})

    # -- one cycle --------------------------------------------------------------------------------
    def poll_once(self) -> Snapshot:
        """Run one full cycle and publish its snapshot."""
        with self._cycle_lock:
            started = self._monotonic()
            refs = self.pools()
            previous = {status.ref.key: status for status in self.snapshot.pools}
            statuses = self.cycle.run(refs, previous, self._settings.polling, self._executor)
            snapshot = Snapshot(
                pools=statuses, arm=self._stats.snapshot(), interval=self._settings.polling.interval, cycles_skipped=self._skipped,
                discovered=self._discovered_counts(), cycle_duration=self._monotonic() - started,
                cycles=self.snapshot.cycles + 1, subscriptions=self._subscriptions(refs),
                shard_index=self._settings.sharding.index, shard_count=self._settings.sharding.count,
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
        counts: dict[tuple[str, str], int] = {(sub, kind): 0 for sub in discovery.subscriptions for kind in discovery.kinds}
        for sub, pools in self._discovered.items():
            for pool in pools:
                counts[(sub, pool.kind)] = counts.get((sub, pool.kind), 0) + 1
        return counts
