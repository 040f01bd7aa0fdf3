"""ArmClient against a scripted loopback server: paging, origin pinning, retries, typed errors, tokens."""

from __future__ import annotations

import bisect
import math
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from exporter import arm
from exporter.arm import ArmClient, ArmError, ErrorKind, ReadBudget, RetryPolicy
from exporter.armstats import ArmStats
from tests.support.fakes import SUB, FakeClock
from tests.support.scripted_http import Reply, ScriptedServer

POOL = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.StandbyPool/standbyContainerGroupPools/pool-a"
LIST = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ContainerInstance/containerGroups"
SECRET = "secret-token-value"


@dataclass
class Token:
    token: str
    expires_on: int


class FakeCredential:
    """Hands out numbered tokens; counts how often it was asked."""

    def __init__(self, lifetime: int = 3600) -> None:
        self.calls = 0
        self.lifetime = lifetime
        self.claims: list[str | None] = []

    def get_token(self, *scopes: str, claims: str | None = None) -> Token:
        import time

        self.calls += 1
        self.claims.append(claims)
        return Token(f"{SECRET}-{self.calls}", int(time.time()) + self.lifetime)


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as scripted:
        yield scripted


def client_for(server: ScriptedServer, credential: FakeCredential | None = None, rate: float = 0,
               burst: int = 1) -> tuple[ArmClient, list[float], ArmStats]:
    fake = FakeClock()
    stats = ArmStats()
    client = ArmClient(
        server.url, credential or FakeCredential(), "https://management.azure.com/.default",
        timeout=2, observer=stats, sleep=fake.sleep, budget=ReadBudget(rate, burst, clock=fake, sleep=fake.sleep),
        retry=RetryPolicy(attempts=3, backoff_base=0.1, backoff_max=1, retry_after_max=7),
    )
    return client, fake.sleeps, stats


def test_get_sends_token_and_api_version_and_records_the_request(server: ScriptedServer) -> None:
    server.script(POOL, Reply(200, {"name": "pool-a"}, {"x-ms-ratelimit-remaining-subscription-reads": "241",
                                                     "x-ms-ratelimit-remaining-subscription-global-reads": "3741"}))
    client, _, stats = client_for(server)
    assert client.get(POOL, "2025-03-01", operation="pool", subscription_id=SUB) == {"name": "pool-a"}
    [seen] = server.requests
    assert seen.path == POOL + "?api-version=2025-03-01"
    assert seen.headers["authorization"] == f"Bearer {SECRET}-1"
    snapshot = stats.snapshot()
    assert snapshot.requests == {(SUB, "pool", "200"): 1}
    assert snapshot.remaining_reads == {SUB: 241}
    assert snapshot.remaining_global_reads == {SUB: 3741}  # the bucket every principal of the subscription shares


def test_token_is_reused_until_near_expiry(server: ScriptedServer) -> None:
    server.script(POOL, Reply(200, {}))
    credential = FakeCredential()
    client, _, _ = client_for(server, credential)
    for _ in range(3):
        client.get(POOL, "2025-03-01", operation="pool", subscription_id=SUB)
    assert credential.calls == 1
    short = FakeCredential(lifetime=arm.TOKEN_REFRESH_MARGIN - 1)
    client, _, _ = client_for(server, short)
    for _ in range(3):
        client.get(POOL, "2025-03-01", operation="pool", subscription_id=SUB)
    assert short.calls == 3


def test_paging_follows_next_link_on_the_same_origin(server: ScriptedServer) -> None:
    server.script(LIST, Reply(200, {"value": [{"name": "a"}, {"name": "b"}], "nextLink": f"{server.url}/page2?api-version=2025-09-01&$skiptoken=x"}))
    server.script("/page2", Reply(200, {"value": [{"name": "c"}], "nextLink": None}))
    client, _, stats = client_for(server)
    assert [item["name"] for item in client.list_all(LIST, "2025-09-01", operation="container_group_list", subscription_id=SUB)] == ["a", "b", "c"]
    assert server.requests[1].path == "/page2?api-version=2025-09-01&$skiptoken=x"
    assert stats.snapshot().requests == {(SUB, "container_group_list", "200"): 2}


def test_next_link_to_another_host_is_refused_and_never_contacted(server: ScriptedServer, caplog: pytest.LogCaptureFixture) -> None:
    with ScriptedServer() as elsewhere:
        elsewhere.script("/steal", Reply(200, {"value": []}))
        server.script(LIST, Reply(200, {"value": [{"name": "a"}], "nextLink": f"{elsewhere.url}/steal"}))
        client, _, stats = client_for(server)
        items = client.list_all(LIST, "2025-09-01", operation="container_group_list", subscription_id=SUB)
        assert items == [{"name": "a"}]  # the list ends with the pages read on the ARM endpoint
        assert elsewhere.requests == []
        assert stats.snapshot().next_links_refused == {SUB: 1}
        [record] = [r for r in caplog.records if r.getMessage().startswith("refusing nextLink")]
        assert record.next_link == elsewhere.url and SECRET not in caplog.text


@pytest.mark.parametrize("link", ["https://{host}/page2", "ftp://{host}/page2", 42])
def test_next_link_with_another_scheme_or_type_is_refused(server: ScriptedServer, link: object) -> None:
    host = server.url.removeprefix("http://")
    server.script(LIST, Reply(200, {"value": [{"name": "a"}], "nextLink": link.format(host=host) if isinstance(link, str) else link}))
    client, _, stats = client_for(server)
    assert client.list_all(LIST, "2025-09-01", operation="container_group_list", subscription_id=SUB) == [{"name": "a"}]
    assert len(server.requests) == 1 and stats.snapshot().next_links_refused == {SUB: 1}


def test_429_pauses_the_subscription_for_retry_after_then_retries(server: ScriptedServer) -> None:
    throttled = {"error": {"code": "TooManyRequests", "message": "slow down"}}
    server.script(POOL, Reply(429, throttled, {"Retry-After": "3"}), Reply(200, {"ok": True}))
    client, sleeps, stats = client_for(server)
    assert client.get(POOL, "2025-03-01", operation="pool", subscription_id=SUB) == {"ok": True}
    assert sum(sleeps) == pytest.approx(3.0)
    snapshot = stats.snapshot()
    assert snapshot.requests == {(SUB, "pool", "429"): 1, (SUB, "pool", "200"): 1}
    assert snapshot.throttled == {SUB: 1}
    assert snapshot.budget_wait_seconds == {SUB: pytest.approx(3.0)}


def test_retry_after_beyond_the_cap_fails_fast_and_keeps_the_pause(server: ScriptedServer) -> None:
    throttled = {"error": {"code": "TooManyRequests", "message": "slow down"}}
    server.script(POOL, Reply(429, throttled, {"Retry-After": "60", "x-ms-request-id": "r-429"}), Reply(200, {"ok": True}))
    client, sleeps, _ = client_for(server)
    with pytest.raises(ArmError) as caught:
        client.get(POOL, "2025-03-01", operation="pool", subscription_id=SUB)
    assert caught.value.kind == ErrorKind.THROTTLED
    assert len(server.requests) == 1 and sum(sleeps) == 0  # never sent before Retry-After passed
    with pytest.raises(ArmError, match="wait 60s more"):  # other reads of the subscription fail fast too
        client.get(POOL, "2025-03-01", operation="pool", subscription_id=SUB)
    assert len(server.requests) == 1


def test_a_429_on_the_last_attempt_still_pauses_the_subscription(server: ScriptedServer) -> None:
    throttled = Reply(429, {"error": {"code": "TooManyRequests", "message": "slow down"}}, {"Retry-After": "2"})
    server.script(POOL, throttled, throttled, throttled, Reply(200, {"ok": True}))
    client, sleeps, stats = client_for(server)  # three attempts
    with pytest.raises(ArmError, match="throttled"):
        client.get(POOL, "2025-03-01", operation="pool", subscription_id=SUB)
    assert sum(sleeps) == pytest.approx(4.0)  # two pauses between the three attempts
    assert client.get(POOL, "2025-03-01", operation="pool", subscription_id=SUB) == {"ok": True}
    assert sum(sleeps) == pytest.approx(6.0)  # the next read waited out the last Retry-After too
    assert stats.snapshot().throttled == {SUB: 3}


def test_budget_spaces_reads_after_the_burst(server: ScriptedServer) -> None:
    server.script(POOL, Reply(200, {}))
    client, sleeps, stats = client_for(server, rate=10, burst=3)
    for _ in range(6):
        client.get(POOL, "2025-03-01", operation="pool", subscription_id=SUB)
    assert sleeps == pytest.approx([0.1, 0.1, 0.1])  # three from the burst, then one per 1/rate
    assert stats.snapshot().budget_wait_seconds[SUB] == pytest.approx(0.3)


def test_server_errors_retry_with_bounded_jittered_backoff(server: ScriptedServer) -> None:
    server.script(POOL, Reply(503, {"error": {"code": "ServiceUnavailable", "message": "busy"}}, {"x-ms-request-id": "req-1"}))
    client, sleeps, _ = client_for(server)
    with pytest.raises(ArmError) as caught:
        client.get(POOL, "2025-03-01", operation="pool", subscription_id=SUB)
    error = caught.value
    assert (error.kind, error.status, error.code, error.request_id, error.operation) == (ErrorKind.SERVER, 503, "ServiceUnavailable", "req-1", "pool")
    assert len(server.requests) == 3
    assert len(sleeps) == 2 and 0.05 <= sleeps[0] <= 0.1 and 0.1 <= sleeps[1] <= 0.2


def test_401_refreshes_the_token_once_and_retries_once(server: ScriptedServer) -> None:
    unauthorized = Reply(401, {"error": {"code": "InvalidAuthenticationToken", "message": "expired"}})
    server.script(POOL, unauthorized, Reply(200, {"ok": 1}))
    credential = FakeCredential()
    client, _, _ = client_for(server, credential)
    assert client.get(POOL, "2025-03-01", operation="pool", subscription_id=SUB) == {"ok": 1}
    assert [seen.headers["authorization"] for seen in server.requests] == [f"Bearer {SECRET}-1", f"Bearer {SECRET}-2"]
    # The refresh passes claims (a token issued after now), which makes azure-identity skip its cache.
    assert credential.claims[0] is None and '"nbf":{"essential":true' in (credential.claims[1] or "")
    server.script(POOL, unauthorized)
    with pytest.raises(ArmError) as caught:
        client.get(POOL, "2025-03-01", operation="pool", subscription_id=SUB)
    assert caught.value.kind == ErrorKind.UNAUTHORIZED
    assert len(server.requests) == 4  # one refresh, one retry, no more


def test_401_claims_challenge_is_passed_to_the_credential(server: ScriptedServer) -> None:
    challenge = ('Bearer authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", error="insufficient_claims", '
                 'claims="eyJhY2Nlc3NfdG9rZW4iOnsibmJmIjp7ImVzc2VudGlhbCI6dHJ1ZX19fQ=="')
    revoked = {"error": {"code": "InvalidAuthenticationToken", "message": "revoked"}}
    server.script(POOL, Reply(401, revoked, {"WWW-Authenticate": challenge}), Reply(200, {}))
    credential = FakeCredential()
    client, _, _ = client_for(server, credential)
    client.get(POOL, "2025-03-01", operation="pool", subscription_id=SUB)
    assert credential.claims == [None, '{"access_token":{"nbf":{"essential":true}}}']


@pytest.mark.parametrize(
    ("reply", "kind", "code"),
    [
        (Reply(403, {"error": {"code": "AuthorizationFailed", "message": "no read on\nthis scope"}}), ErrorKind.FORBIDDEN, "AuthorizationFailed"),
        (Reply(404, {"error": {"code": "ResourceNotFound", "message": "gone"}}), ErrorKind.NOT_FOUND, "ResourceNotFound"),
        (Reply(400, {"error": {"code": "InvalidApiVersionParameter", "message": "bad"}}), ErrorKind.BAD_RESPONSE, "InvalidApiVersionParameter"),
        (Reply(200, b"{not json"), ErrorKind.BAD_RESPONSE, None),
        (Reply(200, b"<html><body>Gateway</body></html>", {"Content-Type": "text/html"}), ErrorKind.BAD_RESPONSE, None),
        (Reply(200, b"[1, 2]"), ErrorKind.BAD_RESPONSE, None),
        (Reply(502, b"<html>bad gateway</html>"), ErrorKind.SERVER, None),
    ],
)
def test_typed_errors(server: ScriptedServer, reply: Reply, kind: str, code: str | None) -> None:
    server.script(POOL, reply)
    client, _, _ = client_for(server)
    with pytest.raises(ArmError) as caught:
        client.get(POOL, "2025-03-01", operation="pool", subscription_id=SUB)
    assert (caught.value.kind, caught.value.code) == (kind, code)
    assert "\n" not in str(caught.value)
    assert SECRET not in str(caught.value)


def test_list_without_value_array_is_a_bad_response(server: ScriptedServer) -> None:
    server.script(LIST, Reply(200, {"items": []}))
    client, _, _ = client_for(server)
    with pytest.raises(ArmError, match="no 'value' array"):
        client.list_all(LIST, "2025-09-01", operation="container_group_list", subscription_id=SUB)


def test_oversized_body_is_rejected(server: ScriptedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(arm, "MAX_BODY_BYTES", 1000)
    server.script(POOL, Reply(200, {"padding": "x" * 5000}))
    client, _, _ = client_for(server)
    with pytest.raises(ArmError, match="larger than 1000 bytes"):
        client.get(POOL, "2025-03-01", operation="pool", subscription_id=SUB)


def test_announced_oversized_body_is_refused_before_reading(server: ScriptedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(arm, "MAX_BODY_BYTES", 1000)
    server.script(POOL, Reply(200, {"padding": "x" * 5000}))
    client, _, _ = client_for(server)
    reads: list[int] = []
    original = arm.requests.Response.iter_content
    monkeypatch.setattr(arm.requests.Response, "iter_content", lambda self, *a, **k: reads.append(1) or original(self, *a, **k))
    with pytest.raises(ArmError, match="larger than 1000 bytes"):
        client.get(POOL, "2025-03-01", operation="pool", subscription_id=SUB)
    assert reads == []


def test_connection_refused_is_a_transport_error_counted_as_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    stats = ArmStats()
    client = ArmClient(f"http://127.0.0.1:{port}", FakeCredential(), "scope", observer=stats, sleep=lambda _: None, retry=RetryPolicy(attempts=2))
    with pytest.raises(ArmError) as caught:
        client.get(POOL, "2025-03-01", operation="pool", subscription_id=SUB)
    assert caught.value.kind == ErrorKind.TRANSPORT
    assert stats.snapshot().requests == {(SUB, "pool", "error"): 2}


def test_credential_failure_is_typed_and_does_not_call_arm(server: ScriptedServer) -> None:
    class Broken:
        def get_token(self, *scopes: str, claims: str | None = None) -> Token:
            raise RuntimeError("identity endpoint said no\nsecond line")

    client = ArmClient(server.url, Broken(), "scope", sleep=lambda _: None)
    with pytest.raises(ArmError) as caught:
        client.get(POOL, "2025-03-01", operation="pool", subscription_id=SUB)
    assert caught.value.kind == ErrorKind.CREDENTIAL
    assert "identity endpoint said no" in str(caught.value) and "second line" not in str(caught.value)
    assert server.requests == []


def test_failed_token_request_is_logged_once_and_held_for_the_reads_of_the_cycle(caplog: pytest.LogCaptureFixture) -> None:
    from exporter.arm import CREDENTIAL_FAILURE_HOLD, TokenCache

    class Failing:
        calls = 0
        works = False

        def get_token(self, *scopes: str, claims: str | None = None) -> Token:
            self.calls += 1
            if self.works:
                return Token("fresh", int(__import__("time").time()) + 3600)
            raise RuntimeError("DefaultAzureCredential failed to retrieve a token from the included credentials.\n"
                               "Attempted credentials:\n\tEnvironmentCredential: EnvironmentCredential authentication "
                               "unavailable. Environment variables are not fully configured.\nVisit https://aka.ms/x")

    now = [0.0]
    credential = Failing()
    cache = TokenCache(credential, "scope", monotonic=lambda: now[0])
    with caplog.at_level("WARNING", logger="exporter.arm"):
        for _ in range(5):  # the concurrent reads of one cycle
            with pytest.raises(ArmError) as caught:
                cache.get()
            assert caught.value.kind == ErrorKind.CREDENTIAL and "cannot get an access token" in str(caught.value)
    assert credential.calls == 1
    [record] = [r for r in caplog.records if r.name == "exporter.arm"]
    assert record.getMessage().startswith("no working Azure credential")
    assert "EnvironmentCredential (Environment variables are not fully configured)" == record.tried
    assert "AZURE_CLIENT_SECRET" in record.fix and "az login" in record.fix and "--demo" in record.demo
    now[0] += CREDENTIAL_FAILURE_HOLD  # the next cycle asks again
    with pytest.raises(ArmError):
        cache.get()
    assert credential.calls == 2
    now[0] += CREDENTIAL_FAILURE_HOLD
    credential.works = True
    assert cache.get() == "fresh" and credential.calls == 3
    assert cache.get() == "fresh" and credential.calls == 3


def test_concurrent_401s_refresh_the_token_once() -> None:
    from concurrent.futures import ThreadPoolExecutor

    credential = FakeCredential()
    tokens = arm.TokenCache(credential, "scope")
    rejected = tokens.get()
    with ThreadPoolExecutor(8) as pool:
        fresh = set(pool.map(lambda _: tokens.get(rejected=rejected), range(8)))
    assert fresh == {f"{SECRET}-2"}
    assert credential.calls == 2  # the first token, then one refresh for all eight readers


def test_budget_holds_under_concurrent_readers() -> None:
    import threading
    import time

    budget = ReadBudget(rate=40, burst=5)
    stamps: list[float] = []
    lock = threading.Lock()

    def reader() -> None:
        for _ in range(5):
            budget.acquire(SUB)
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=reader) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    stamps.sort()
    assert len(stamps) == 40
    # 5 at once, then one per 1/40 s: the 40 reads take at least (40 - 5) / 40 s
    assert stamps[-1] - stamps[0] >= 35 / 40 - 0.02
    for i, start in enumerate(stamps):  # no 0.5 s window holds more than burst + rate x 0.5 (+1 for edges)
        assert sum(1 for t in stamps[i:] if t - start < 0.5) <= 5 + 20 + 1


def test_budget_update_applies_the_new_rate_and_caps_the_balance() -> None:
    fake = FakeClock()
    budget = ReadBudget(rate=1, burst=50, clock=fake, sleep=fake.sleep)
    budget.acquire(SUB)
    budget.update(rate=10, burst=2)
    for _ in range(4):
        budget.acquire(SUB)
    assert fake.sleeps == pytest.approx([0.1, 0.1])  # balance capped at 2, then one per 1/10 s


def test_session_takes_proxy_and_ca_bundle_from_the_environment_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/custom.pem")
    session = arm._session_for("https://management.azure.com")
    assert session.proxies.get("https") == "http://proxy.example:3128"
    assert session.verify == "/etc/ssl/custom.pem"
    assert session.trust_env is False
    monkeypatch.setenv("NO_PROXY", "management.azure.com")
    assert "https" not in arm._session_for("https://management.azure.com").proxies


def _run_readers(budget: ReadBudget, fake: FakeClock, readers: int, sends: int, pause_after: int,
                 pause: float) -> tuple[list[float], list[int], float]:
    """``readers`` workers each reserving, waiting for their turn and sending, one after another on a fake clock;
    after send number ``pause_after`` ARM answers 429 with ``Retry-After: pause``. Returns the send times, the
    reservation order of the sends and the time of the pause."""
    order = iter(range(10**6))
    pending = [(next(order), budget.reserve(SUB)) for _ in range(readers)]
    times: list[float] = []
    served: list[int] = []
    paused_at = math.nan
    while len(times) < sends:
        index, reservation = min(pending, key=lambda item: (budget.due(item[1]), item[0]))
        fake.now = max(fake.now, budget.due(reservation))
        pending.remove((index, reservation))
        times.append(fake.now)
        served.append(index)
        if len(times) == pause_after:
            paused_at = fake.now
            budget.pause(SUB, pause)
        pending.append((next(order), budget.reserve(SUB)))
    return times, served, paused_at


def _busiest(times: list[float], start: float = -math.inf) -> int:
    later = sorted(t for t in times if t >= start)
    return max(bisect.bisect_left(later, t + 1.0) - i for i, t in enumerate(later))


def test_budget_is_exact_across_a_retry_after_pause() -> None:
    """20/s, burst 20, 16 concurrent readers, a 429 with Retry-After 3: no 1 s window over 40, nothing during the
    pause, the queue goes out at the budgeted rate afterwards and in order (the old bucket let 54 through)."""
    fake = FakeClock()
    budget = ReadBudget(rate=20, burst=20, clock=fake, sleep=fake.sleep)
    times, served, paused_at = _run_readers(budget, fake, readers=16, sends=400, pause_after=60, pause=3.0)
    assert _busiest(times) <= 40
    assert not [t for t in times if paused_at < t < paused_at + 3.0]  # nothing before Retry-After passed
    after = [t for t in times if t >= paused_at + 3.0]
    assert after[0] <= paused_at + 3.0 + 1 / 20 + 1e-6  # the queue resumes where it stood
    assert _busiest(times, paused_at + 3.0) <= 21  # the bucket did not fill during the pause: about one rate's worth
    assert served == sorted(served)  # first come, first served, across the pause
    # long run: the rate holds at 20/s
    assert (len(after) - 1) / (after[-1] - after[0]) == pytest.approx(20, rel=0.01)


def test_pause_extension_and_readers_arriving_during_a_pause() -> None:
    fake = FakeClock()
    budget = ReadBudget(rate=10, burst=2, clock=fake, sleep=fake.sleep)
    first = [budget.reserve(SUB) for _ in range(4)]  # two at once, then 1000.1, 1000.2
    assert [budget.due(r) for r in first] == pytest.approx([1000.0, 1000.0, 1000.1, 1000.2])
    budget.pause(SUB, 2.0)
    budget.pause(SUB, 1.0)  # shorter than the one in force: no change
    fake.now += 1.0
    budget.pause(SUB, 3.0)  # extends the pause to 1004: pending reads move back by one more second
    assert [budget.due(r) for r in first[2:]] == pytest.approx([1004.1, 1004.2])
    late = budget.reserve(SUB)  # arrives during the pause: after the queue, bucket still empty
    assert budget.due(late) == pytest.approx(1004.3)
    assert budget.paused_for(SUB) == pytest.approx(3.0)
    assert budget.acquire(SUB) == pytest.approx(3.4)  # waits out the pause and its place in the queue


def test_a_full_bucket_stays_full_not_fuller_after_a_pause() -> None:
    fake = FakeClock()
    budget = ReadBudget(rate=5, burst=3, clock=fake, sleep=fake.sleep)
    budget.pause(SUB, 10.0)
    fake.now += 100.0  # long after the pause
    reservations = [budget.reserve(SUB) for _ in range(5)]
    assert [budget.due(r) - fake.now for r in reservations] == pytest.approx([0, 0, 0, 0.2, 0.4])


def test_rate_zero_still_honours_pauses() -> None:
    fake = FakeClock()
    budget = ReadBudget(rate=0, burst=1, clock=fake, sleep=fake.sleep)
    assert budget.acquire(SUB) == 0
    budget.pause(SUB, 2.5)
    assert budget.acquire(SUB) == pytest.approx(2.5)
    assert budget.acquire(SUB) == 0
