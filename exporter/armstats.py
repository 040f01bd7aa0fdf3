"""Thread-safe tallies of ARM requests, read by each snapshot for the self-metrics."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ArmStatsSnapshot:
    requests: dict[tuple[str, str, str], int] = field(default_factory=dict)  # (subscription, operation, code) -> count
    remaining_reads: dict[str, int] = field(default_factory=dict)  # subscription -> last header value (this principal)
    remaining_global_reads: dict[str, int] = field(default_factory=dict)  # subscription -> last header value (all principals)
    remaining_resource: dict[tuple[str, str], int] = field(default_factory=dict)  # (subscription, policy) -> last value
    throttled: dict[str, int] = field(default_factory=dict)  # subscription -> 429s answered by a pause
    budget_wait_seconds: dict[str, float] = field(default_factory=dict)  # subscription -> seconds waited
    next_links_refused: dict[str, int] = field(default_factory=dict)  # subscription -> nextLinks off the ARM origin


class ArmStats:
    """Implements :class:`exporter.arm.RequestObserver`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[tuple[str, str, str]] = Counter()
        self._remaining: dict[str, int] = {}
        self._remaining_global: dict[str, int] = {}
        self._remaining_resource: dict[tuple[str, str], int] = {}
        self._throttled: Counter[str] = Counter()
        self._waited: dict[str, float] = {}
        self._refused: Counter[str] = Counter()

    def request_done(self, subscription_id: str, operation: str, code: str, remaining_reads: int | None,
                     remaining_global_reads: int | None = None) -> None:
        with self._lock:
            self._requests[(subscription_id, operation, code)] += 1
            if remaining_reads is not None:
                self._remaining[subscription_id] = remaining_reads
            if remaining_global_reads is not None:
                self._remaining_global[subscription_id] = remaining_global_reads

    def resource_limits(self, subscription_id: str, remaining: dict[str, int]) -> None:
        with self._lock:
            for policy, value in remaining.items():
                self._remaining_resource[(subscription_id, policy)] = value

    def throttled(self, subscription_id: str) -> None:
        with self._lock:
            self._throttled[subscription_id] += 1

    def budget_waited(self, subscription_id: str, seconds: float) -> None:
        with self._lock:
            self._waited[subscription_id] = self._waited.get(subscription_id, 0.0) + seconds

    def next_link_refused(self, subscription_id: str) -> None:
        with self._lock:
            self._refused[subscription_id] += 1

    def snapshot(self) -> ArmStatsSnapshot:
        with self._lock:
            return ArmStatsSnapshot(
                requests=dict(self._requests), remaining_reads=dict(self._remaining),
                remaining_global_reads=dict(self._remaining_global), remaining_resource=dict(self._remaining_resource),
                throttled=dict(self._throttled), budget_wait_seconds=dict(self._waited),
                next_links_refused=dict(self._refused),
            )
