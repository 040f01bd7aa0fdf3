"""Render a snapshot once per cycle, in both exposition formats, and publish the bytes scrapes serve.

Scrapes never render: :class:`Publisher` swaps in a new :class:`Publication` in one step after each cycle.
"""

from __future__ import annotations

import gzip
import threading
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics import exposition as openmetrics

from .collector import SnapshotCollector
from .snapshot import Snapshot

_EOF = b"# EOF\n"


@dataclass(frozen=True)
class Exposition:
    """One snapshot rendered once, in both formats; gzip made on first request and kept."""

    text: bytes
    openmetrics: bytes  # without the closing "# EOF": the scrape-time part brings it
    _gzipped: dict[bool, bytes] = field(default_factory=dict, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, compare=False)

    def body(self, openmetrics_format: bool) -> bytes:
        return self.openmetrics if openmetrics_format else self.text

    def gzipped(self, openmetrics_format: bool) -> bytes:
        with self._lock:
            if openmetrics_format not in self._gzipped:
                self._gzipped[openmetrics_format] = gzip.compress(self.body(openmetrics_format), compresslevel=6)
            return self._gzipped[openmetrics_format]


def render(snapshot: Snapshot) -> Exposition:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(lambda: snapshot))
    return Exposition(text=generate_latest(registry), openmetrics=openmetrics.generate_latest(registry).removesuffix(_EOF))


@dataclass(frozen=True)
class Publication:
    snapshot: Snapshot
    exposition: Exposition


class Publisher:
    """Holds the latest rendered snapshot; ``publish`` swaps in a new one in one step."""

    def __init__(self, initial: Snapshot) -> None:
        self.current = Publication(initial, render(initial))

    def publish(self, snapshot: Snapshot) -> None:
        self.current = Publication(snapshot, render(snapshot))
