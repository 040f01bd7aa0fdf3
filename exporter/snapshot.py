"""The immutable result of one poll cycle: built by the poller, swapped in whole, read by the collector,
the exposition and the HTTP pages. No I/O, no behaviour beyond what the data says of itself."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import model
from .armstats import ArmStatsSnapshot
from .config import PoolRef


@dataclass(frozen=True)
class PoolData:
    """What is published about a pool, part by part; a part is None when never read or stale."""

    pool: model.Pool | None  # the pool resource (capacity, provisioning state, info)
    runtime: model.RuntimeView | None  # instance counts, health, forecast
    members: tuple[model.Member, ...] | None  # members read successfully and not stale


# The parts of a pool that are read, kept and fail on their own.
RUNTIME_VIEW, POOL_RESOURCE, MEMBER_LIST, MEMBERS = "runtime view", "pool resource", "member list", "members"


@dataclass(frozen=True)
class PartError:
    """Why one part of a pool failed this cycle."""

    part: str  # RUNTIME_VIEW, POOL_RESOURCE, MEMBER_LIST or MEMBERS (member detail reads)
    error: str


@dataclass(frozen=True)
class PoolStatus:
    ref: PoolRef
    polled: bool = False
    up: bool = False  # this cycle's runtime view read succeeded
    last_success: float | None = None  # wall-clock seconds of the last successful runtime view read
    poll_duration: float | None = None
    last_error: str | None = None  # this cycle's part errors in one line, None when every read succeeded
    data: PoolData | None = None
    resource_up: bool = False  # the pool resource comes from a pool list read within polling.pool_refresh
    members_up: bool = False  # this cycle's member list read succeeded
    member_read_failures: int = 0  # listed members whose latest detail read failed
    errors: tuple[PartError, ...] = ()


@dataclass(frozen=True)
class Snapshot:
    pools: tuple[PoolStatus, ...]
    arm: ArmStatsSnapshot
    interval: float
    cycles_skipped: int = 0
    discovered: dict[tuple[str, str], int] = field(default_factory=dict)  # (subscription, kind) -> pools found
    cycle_duration: float | None = None
    cycles: int = 0  # completed poll cycles
    subscriptions: tuple[str, ...] = ()  # every configured or discovered subscription (for counters at 0)

    @property
    def ready(self) -> bool:
        """A cycle has completed and every pool has been polled at least once (successfully or not)."""
        return self.cycles > 0 and all(status.polled for status in self.pools)
