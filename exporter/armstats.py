"""Thread-safe tallies of ARM requests, read by each snapshot for the self-metrics."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ArmStatsSnapshot:
    requests: dict[tuple[str, str, str], int] = field(default_factory=dict)  # (subscription, operation, code) -> count
    remaining_reads: dict[str, int] = field(default_factory=dict)  # subscription -> last header value


class ArmStats:
    """Implements :class:`exporter.arm.RequestObserver`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[tuple[str, str, str]] = Counter()
        self._remaining: dict[str, int] = {}

    def request_done(self, subscription_id: str, operation: str, code: str, remaining_reads: int | None) -> None:
        with self._lock:
            self._requests[(subscription_id, operation, code)] += 1
            if remaining_reads is not None:
                self._remaining[subscription_id] = remaining_reads

    def snapshot(self) -> ArmStatsSnapshot:
        with self._lock:
            return ArmStatsSnapshot(requests=dict(self._requests), remaining_reads=dict(self._remaining))
