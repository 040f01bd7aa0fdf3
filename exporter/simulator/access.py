"""Who may call ARM and how often: issued bearer tokens and the per-subscription read bucket."""

from __future__ import annotations

import math
import secrets
import threading
import time
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


@dataclass(frozen=True)
class ReadDecision:
    """The outcome of asking the bucket for one read."""

    allowed: bool
    remaining: int
    retry_after: int


class ReadThrottle:
    """ARM's per-subscription token bucket for reads (capacity None: unlimited)."""

    UNLIMITED_REMAINING = 11999

    def __init__(self, capacity: int | None, refill_per_second: float, clock: Callable[[], float]) -> None:
        self._capacity = capacity
        self._rate = refill_per_second
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # subscription -> (tokens, as of)

    def take(self, subscription_id: str) -> ReadDecision:
        """Spend one read for the subscription if the bucket has one."""
        if self._capacity is None:
            return ReadDecision(True, self.UNLIMITED_REMAINING, 0)
        now = self._clock()
        with self._lock:
            tokens, as_of = self._buckets.get(subscription_id, (float(self._capacity), now))
            tokens = min(float(self._capacity), tokens + max(0.0, now - as_of) * self._rate)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            self._buckets[subscription_id] = (tokens, now)
        if allowed:
            return ReadDecision(True, int(tokens), 0)
        wait = math.ceil((1.0 - tokens) / self._rate) if self._rate > 0 else 60
        return ReadDecision(False, 0, max(1, wait))
