"""Who may call ARM and how often: issued bearer tokens and the per-subscription read bucket."""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

TOKEN_LIFETIME = 3600.0
# Audiences accepted for ARM: the Resource Manager hosts of every cloud ("https://management.<...>").
_ARM_AUDIENCE_PREFIX = "https://management."


@dataclass(frozen=True)
class IssuedToken:
    """A token handed out by the managed identity endpoint."""

    access_token: str
    resource: str
    expires_on: int  # wall-clock epoch seconds, as Azure reports it
    valid_until: float  # simulator clock


class TokenIssuer:
    """Issues random bearer tokens and checks them."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[str, IssuedToken] = {}

    def issue(self, resource: str) -> IssuedToken:
        """Issue a token for ``resource``, valid for one hour."""
        token = IssuedToken(
            access_token=secrets.token_urlsafe(32),
            resource=resource,
            expires_on=int(time.time() + TOKEN_LIFETIME),
            valid_until=self._clock() + TOKEN_LIFETIME,
        )
        with self._lock:
            self._tokens[token.access_token] = token
        return token

    def check(self, access_token: str) -> str | None:
        """None when the token is good for ARM, else the reason it is not."""
        with self._lock:
            token = self._tokens.get(access_token)
        if token is None:
            return "The access token is invalid."
        if self._clock() >= token.valid_until:
            return "The access token expiry UTC time is earlier than current UTC time."
        if not token.resource.lower().startswith(_ARM_AUDIENCE_PREFIX):
            return f"The access token has been obtained for wrong audience or resource '{token.resource}'."
        return None

    def revoke_all(self) -> None:
        """Make every issued token invalid."""
        with self._lock:
            self._tokens.clear()


# ARM's token buckets for reads (Azure Resource Manager throttling, regional throttling and token bucket
# algorithm): per principal 250 reads refilled at 25/s; the bucket all principals of a subscription share is 15x that.
ARM_READ_BUCKET = 250
ARM_READ_REFILL_PER_SECOND = 25.0
GLOBAL_FACTOR = 15


@dataclass(frozen=True)
class ReadDecision:
    """The outcome of asking the buckets for one read."""

    allowed: bool
    remaining: int  # this principal's bucket (x-ms-ratelimit-remaining-subscription-reads)
    global_remaining: int  # every principal's bucket (x-ms-ratelimit-remaining-subscription-global-reads)
    retry_after: int


class ReadThrottle:
    """ARM's per-subscription read buckets: always counted for the headers, enforced (429) only when opted in.

    ``capacity`` None: not enforced, and the headers count ARM's own buckets (250 at 25/s, 15x that globally);
    a number: that capacity refilled at ``refill_per_second`` (15x both globally), and a read with no token left
    is answered 429 with ``Retry-After``.
    """

    def __init__(self, capacity: int | None, refill_per_second: float, clock: Callable[[], float]) -> None:
        self._enforced = capacity is not None
        self._capacity = float(ARM_READ_BUCKET if capacity is None else capacity)
        self._rate = ARM_READ_REFILL_PER_SECOND if capacity is None else refill_per_second
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float, float]] = {}  # subscription -> (tokens, global tokens, as of)

    def take(self, subscription_id: str) -> ReadDecision:
        """Spend one read for the subscription if the buckets have one (or count it, when not enforced)."""
        now = self._clock()
        with self._lock:
            tokens, shared, as_of = self._buckets.get(subscription_id, (self._capacity, self._capacity * GLOBAL_FACTOR, now))
            elapsed = max(0.0, now - as_of)
            tokens = min(self._capacity, tokens + elapsed * self._rate)
            shared = min(self._capacity * GLOBAL_FACTOR, shared + elapsed * self._rate * GLOBAL_FACTOR)
            allowed = not self._enforced or (tokens >= 1.0 and shared >= 1.0)
            if allowed:
                tokens, shared = max(0.0, tokens - 1.0), max(0.0, shared - 1.0)
            self._buckets[subscription_id] = (tokens, shared, now)
        if allowed:
            return ReadDecision(True, int(tokens), int(shared), 0)
        wait = math.ceil((1.0 - tokens) / self._rate) if self._rate > 0 else 60
        return ReadDecision(False, 0, int(shared), max(1, wait))


COMPUTE_READ_POLICIES = (("Microsoft.Compute/HighCostGet3Min", 180.0, 190), ("Microsoft.Compute/HighCostGet30Min", 1800.0, 900))


class ComputeReadLimits:
    """Compute's own read throttling, as its ``x-ms-ratelimit-remaining-resource`` header reports it: per subscription,
    reads left in a rolling 3- and 30-minute window (the limits are the simulator's; Azure's vary by operation)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._reads: dict[str, deque[float]] = {}

    def take(self, subscription_id: str) -> str:
        """Count one Compute read; the header value after it."""
        with self._lock:
            now = self._clock()
            reads = self._reads.setdefault(subscription_id.lower(), deque())
            reads.append(now)
            while reads and now - reads[0] > COMPUTE_READ_POLICIES[-1][1]:
                reads.popleft()
            return ",".join(f"{policy};{max(0, limit - sum(1 for at in reads if now - at <= window))}"
                            for policy, window, limit in COMPUTE_READ_POLICIES)
