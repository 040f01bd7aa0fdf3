"""HTTP Basic auth for the web config's users: a verified-credential cache and a bounded queue of bcrypt checks.

bcrypt is slow by design (tens of milliseconds at cost 10), so a flood of wrong passwords could keep
every CPU busy and make legitimate scrapes wait. Here:

* a password that passed bcrypt is remembered as its SHA-256, keyed by user AND bcrypt hash: later
  requests with it skip bcrypt, and the entry survives web config reloads as long as that user's
  hash does not change (a changed or removed user drops it);
* bcrypt checks run on a few worker threads behind a short queue; when the queue is full the
  request is refused at once (``BUSY``: the server answers 429 with ``Retry-After``), which is not an
  authentication failure. A client verified before the flood is still served from the cache.
* unknown users are checked against a dummy hash of the configured cost, so timing does not reveal
  which users exist.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import os
import secrets
import threading
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor

import bcrypt


class Verdict(enum.Enum):
    ALLOWED = "allowed"
    DENIED = "denied"  # wrong or missing credentials: 401
    BUSY = "busy"  # the bcrypt queue is full: 429, try again


def default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


class Authenticator:
    """Checks ``Authorization`` headers against a users mapping (user -> bcrypt hash). Thread-safe."""

    def __init__(self, workers: int | None = None, queue_size: int = 8) -> None:
        self.workers = workers or default_workers()
        self.queue_size = queue_size
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="bcrypt")
        self._slots = threading.BoundedSemaphore(self.workers + queue_size)  # running plus waiting checks
        self._lock = threading.Lock()
        self._verified: dict[tuple[str, bytes], bytes] = {}  # (user, bcrypt hash) -> sha256(password)
        self._dummy: dict[int, bytes] = {}  # bcrypt cost -> hash of a random password

    def begin(self, users: Mapping[str, bytes], header: str | None) -> Verdict | Future[Verdict]:
        """A verdict now (no users, malformed header, cached credentials, queue full), or a bcrypt check's future."""
        if not users:
            return Verdict.ALLOWED
        credentials = parse_basic(header)
        if credentials is None:
            return Verdict.DENIED
        user, password = credentials
        digest = hashlib.sha256(password).digest()
        hashed = users.get(user)
        if hashed is not None:
            cached = self._verified.get((user, hashed))
            if cached is not None and hmac.compare_digest(cached, digest):
                return Verdict.ALLOWED
        if not self._slots.acquire(blocking=False):
            return Verdict.BUSY
        try:
            future = self._executor.submit(self._verify, users, user, password, hashed, digest)
        except RuntimeError:  # shut down
            self._slots.release()
            return Verdict.BUSY
        future.add_done_callback(lambda _: self._slots.release())
        return future

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _verify(self, users: Mapping[str, bytes], user: str, password: bytes, hashed: bytes | None, digest: bytes) -> Verdict:
        if not _checkpw(password, hashed if hashed is not None else self._dummy_hash(users)):
            return Verdict.DENIED
        if hashed is None:
            return Verdict.DENIED
        with self._lock:
            # Keep only entries that still match a configured user and hash (web config reloads).
            self._verified = {key: value for key, value in self._verified.items() if users.get(key[0]) == key[1]}
            self._verified[(user, hashed)] = digest
        return Verdict.ALLOWED

    def _dummy_hash(self, users: Mapping[str, bytes]) -> bytes:
        """A hash of a random password with the highest cost among the configured hashes."""
        cost = max(int(hashed[4:6]) for hashed in users.values())
        with self._lock:
            dummy = self._dummy.get(cost)
        if dummy is None:
            dummy = bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(rounds=cost))
            with self._lock:
                dummy = self._dummy.setdefault(cost, dummy)
        return dummy


def parse_basic(header: str | None) -> tuple[str, bytes] | None:
    """``Basic base64(user:password)`` -> (user, password bytes), or None when malformed."""
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True)
        user, sep, password = decoded.partition(b":")
        return (user.decode("utf-8"), password) if sep else None
    except ValueError:  # bad base64, non-ASCII header, user not UTF-8
        return None


def _checkpw(password: bytes, hashed: bytes) -> bool:
    try:
        return bcrypt.checkpw(password, hashed)
    except ValueError:  # e.g. passwords over 72 bytes
        return False
