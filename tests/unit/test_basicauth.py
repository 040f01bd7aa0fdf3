"""exporter.basicauth: header parsing, the verified-credential cache across reloads, the bounded bcrypt queue."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path

import bcrypt
import pytest

from exporter.basicauth import Authenticator, Verdict
from exporter.webconfig import load_web_config

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "webconfig"
USERS = dict(load_web_config(FIXTURES / "good" / "basic_auth.yml").basic_auth_users)  # alice ($2b$04), bob ($2y$04)


def authorize(auth: Authenticator, users: dict[str, bytes], header: str | None) -> Verdict:
    """``begin``, and wait for the bcrypt check when one was needed (as the server's request handler does)."""
    result = auth.begin(users, header)
    return result if isinstance(result, Verdict) else result.result()


def basic(user: str, password: str | bytes) -> str:
    raw = user.encode() + b":" + (password if isinstance(password, bytes) else password.encode())
    return "Basic " + base64.b64encode(raw).decode()


@pytest.fixture
def auth() -> Iterator[Authenticator]:
    authenticator = Authenticator()
    yield authenticator
    authenticator.close()


@pytest.mark.parametrize(
    ("header", "allowed"),
    [
        (basic("alice", "alice-secret"), True),
        (basic("bob", "bob-secret"), True),  # a $2y$ hash, as htpasswd writes
        (basic("alice", "alice-secret").replace("Basic", "basic"), True),
        (basic("alice", "wrong"), False),
        (basic("alice", "bob-secret"), False),
        (basic("Alice", "alice-secret"), False),
        (basic("mallory", "alice-secret"), False),
        (basic("alice", ""), False),
        (basic("alice", "x" * 100), False),  # bcrypt refuses passwords over 72 bytes
        (None, False),
        ("", False),
        ("Basic", False),
        ("Bearer abc", False),
        ("Basic !!!", False),
        ("Basic " + base64.b64encode(b"no colon").decode(), False),
        ("Basic " + base64.b64encode(b"\xff:alice-secret").decode(), False),
        ("Basic é", False),
    ],
)
def test_authorize(auth: Authenticator, header: str | None, allowed: bool) -> None:
    assert authorize(auth, USERS, header) is (Verdict.ALLOWED if allowed else Verdict.DENIED)


def test_no_users_allows_everything(auth: Authenticator) -> None:
    assert authorize(auth, {}, None) is Verdict.ALLOWED and authorize(auth, {}, "Bearer x") is Verdict.ALLOWED


@pytest.fixture
def checkpw_calls(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Hashes bcrypt.checkpw was called with."""
    calls: list[bytes] = []
    real: Callable[[bytes, bytes], bool] = bcrypt.checkpw

    def counting(password: bytes, hashed: bytes) -> bool:
        calls.append(hashed)
        return real(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", counting)
    return calls


def test_successful_logins_are_cached(auth: Authenticator, checkpw_calls: list[bytes]) -> None:
    good, bad = basic("alice", "alice-secret"), basic("alice", "wrong")
    assert authorize(auth, USERS, good) is Verdict.ALLOWED and len(checkpw_calls) == 1
    assert auth.begin(USERS, good) is Verdict.ALLOWED and len(checkpw_calls) == 1  # at once, no bcrypt
    assert authorize(auth, USERS, bad) is Verdict.DENIED and len(checkpw_calls) == 2  # failures always pay bcrypt
    assert authorize(auth, USERS, bad) is Verdict.DENIED and len(checkpw_calls) == 3
    assert authorize(auth, USERS, good) is Verdict.ALLOWED and len(checkpw_calls) == 3
    assert authorize(auth, USERS, basic("bob", "bob-secret")) is Verdict.ALLOWED and len(checkpw_calls) == 4


def test_the_cache_survives_a_reload_for_unchanged_hashes_only(auth: Authenticator, checkpw_calls: list[bytes]) -> None:
    alice, bob = basic("alice", "alice-secret"), basic("bob", "bob-secret")
    assert authorize(auth, USERS, alice) is Verdict.ALLOWED and authorize(auth, USERS, bob) is Verdict.ALLOWED
    assert len(checkpw_calls) == 2
    reloaded = {**USERS, "bob": bcrypt.hashpw(b"bob-secret", bcrypt.gensalt(rounds=4))}  # a new web config: bob's hash changed
    assert auth.begin(reloaded, alice) is Verdict.ALLOWED and len(checkpw_calls) == 2  # alice: still cached
    assert authorize(auth, reloaded, bob) is Verdict.ALLOWED and len(checkpw_calls) == 3  # bob: verified again
    removed = {"bob": reloaded["bob"]}
    assert authorize(auth, removed, alice) is Verdict.DENIED  # a removed user is never served from the cache


def test_unknown_users_pay_bcrypt_at_the_configured_cost(auth: Authenticator, checkpw_calls: list[bytes]) -> None:
    assert authorize(auth, USERS, basic("mallory", "alice-secret")) is Verdict.DENIED
    assert authorize(auth, USERS, basic("mallory", "alice-secret")) is Verdict.DENIED
    assert len(checkpw_calls) == 2
    assert checkpw_calls[0] == checkpw_calls[1]
    assert checkpw_calls[0] not in USERS.values()
    assert checkpw_calls[0].startswith(b"$2b$04$")


def test_a_full_queue_answers_busy_at_once_and_cached_clients_still_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    real = bcrypt.checkpw
    auth = Authenticator(workers=1, queue_size=2)
    try:
        assert authorize(auth, USERS, basic("alice", "alice-secret")) is Verdict.ALLOWED  # verified before the flood
        monkeypatch.setattr(bcrypt, "checkpw", lambda password, hashed: release.wait(10) and real(password, hashed))
        pending = [auth.begin(USERS, basic("alice", f"wrong-{n}")) for n in range(3)]  # one running, two waiting
        assert all(isinstance(p, Future) for p in pending)
        assert auth.begin(USERS, basic("alice", "wrong-4")) is Verdict.BUSY
        assert auth.begin(USERS, basic("bob", "bob-secret")) is Verdict.BUSY  # not cached yet: also refused
        assert auth.begin(USERS, basic("alice", "alice-secret")) is Verdict.ALLOWED  # cached: served during the flood
        release.set()
        assert [p.result(10) for p in pending] == [Verdict.DENIED] * 3  # type: ignore[union-attr]
        assert authorize(auth, USERS, basic("bob", "bob-secret")) is Verdict.ALLOWED  # the queue drained
    finally:
        release.set()
        auth.close()
