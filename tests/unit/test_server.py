"""HTTP layer over real loopback sockets: endpoints, limits and deadlines, web config (real TLS), /-/reload."""

from __future__ import annotations

import asyncio
import gzip
import logging
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass

import bcrypt
import pytest
import requests
from aiohttp import web
from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from exporter.armstats import ArmStatsSnapshot
from exporter.basicauth import Authenticator
from exporter.config import PoolRef
from exporter.exposition import Publisher
from exporter.snapshot import PoolStatus, Snapshot
from exporter.server import HttpServer, Limits, parse_listen_address
from exporter.webapp import ExporterApp, ReloadNotSupported, accepts_gzip
from exporter.webconfig import WebConfig, load_web_config
from tests.support.fakes import SUB
from tests.support.process import wait_until
from tests.support.tls import TlsFiles, make_tls_files


@pytest.fixture
def publisher() -> Publisher:
    return Publisher(
        Snapshot(
            pools=(
                PoolStatus(PoolRef(SUB, "rg", "pool-a"), polled=True, up=False, last_success=None, last_error="runtime view: server: <b>boom</b>",
                           members_up=True, member_read_failures=2),
                PoolStatus(PoolRef(SUB, "rg", "pool-b")),
            ),
            arm=ArmStatsSnapshot(),
            interval=30,
        )
    )


class _Holder:
    """A settable web config source, as WebConfigWatcher.current is."""

    def __init__(self, config: WebConfig | None = None) -> None:
        self.config = config or WebConfig()

    def __call__(self) -> WebConfig:
        return self.config


@dataclass
class Served:
    server: HttpServer
    app: ExporterApp
    registry: CollectorRegistry
    holder: _Holder

    @property
    def port(self) -> int:
        return self.server.address[1]

    def url(self, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}"

    def counter(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, labels)


@pytest.fixture
def serve_app(publisher: Publisher) -> Iterator[Callable[..., Served]]:
    servers: list[HttpServer] = []

    def start(config: WebConfig | None = None, limits: Limits | None = None, telemetry_path: str = "/metrics", **app_options: object) -> Served:
        registry = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=registry)
        holder = _Holder(config)
        limits = limits or Limits()
        app = ExporterApp(publisher, registry, telemetry_path, web_config=holder, limits=limits, **app_options)  # type: ignore[arg-type]
        server = HttpServer(("127.0.0.1", 0), app, limits)
        server.start()
        servers.append(server)
        return Served(server, app, registry, holder)

    yield start
    for server in servers:
        server.stop()


def done(value: list[str]) -> Future[list[str]]:
    future: Future[list[str]] = Future()
    future.set_result(value)
    return future


def session() -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    return s


def raw_request(port: int, request: bytes, timeout: float = 5) -> bytes:
    """Send bytes, read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


# --- endpoints -----------------------------------------------------------------------------------


def test_metrics_on_the_telemetry_path(serve_app: Callable[..., Served]) -> None:
    served = serve_app(telemetry_path="/custom-metrics")
    response = requests.get(served.url() + "/custom-metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert response.headers["Vary"] == "Accept-Encoding"
    assert 'azure_standby_pool_up{pool="pool-a"' in response.text
    assert requests.get(served.url() + "/metrics", timeout=5).status_code == 404


def test_gzip_when_accepted_decodes_to_the_plain_body(serve_app: Callable[..., Served]) -> None:
    url = serve_app().url() + "/metrics"
    response = requests.get(url, headers={"Accept-Encoding": "gzip"}, timeout=5, stream=True)
    assert response.headers["Content-Encoding"] == "gzip" and response.headers["Vary"] == "Accept-Encoding"
    text = gzip.decompress(response.raw.read()).decode()  # two gzip members: cached snapshot + live part
    plain = requests.get(url, timeout=5).text
    families = lambda body: sorted(f.name for f in text_string_to_metric_families(body))  # noqa: E731
    assert families(text) == families(plain)
    assert "azure_standby_pool_up" in families(text) and "process_cpu_seconds" in families(text)


@pytest.mark.parametrize(
    ("header", "gzipped"),
    [
        ("gzip", True), ("GZIP", True), ("x-gzip", True), ("deflate, gzip;q=0.5", True), ("*", True), ("br, *;q=0.1", True),
        ("gzip;q=0", False), ("gzip; q=0.000", False), ("gzip;q=0, *", False), ("*;q=0", False), ("identity", False),
        ("gzip;q=nan", False), ("gzip;q=2", False), ("gzip;q=abc", False), ("", False), (None, False),
    ],
)
def test_gzip_honours_q_values(header: str | None, gzipped: bool) -> None:
    assert accepts_gzip(header) is gzipped


def test_gzip_q_zero_gets_the_plain_body(serve_app: Callable[..., Served]) -> None:
    response = requests.get(serve_app().url() + "/metrics", headers={"Accept-Encoding": "gzip;q=0"}, timeout=5)
    assert "Content-Encoding" not in response.headers and response.headers["Vary"] == "Accept-Encoding"
    assert "azure_standby_pool_up" in response.text


def test_openmetrics_when_negotiated(serve_app: Callable[..., Served]) -> None:
    url = serve_app().url() + "/metrics"
    accept = {"Accept": "application/openmetrics-text; version=1.0.0"}
    response = requests.get(url, headers=accept, timeout=5)
    assert response.headers["Content-Type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n") and response.text.count("# EOF") == 1
    names = {family.name for family in parse_openmetrics(response.text)}
    assert {"azure_standby_pool_up", "process_cpu_seconds"} <= names
    gzipped = requests.get(url, headers={**accept, "Accept-Encoding": "gzip"}, timeout=5)
    assert _exporter_lines(gzipped.text) == _exporter_lines(response.text) != []
    assert gzipped.text.endswith("# EOF\n") and gzipped.text.count("# EOF") == 1


def _exporter_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "azure_standby_pool_" in line]


def test_landing_page_lists_pools_escaped(serve_app: Callable[..., Served]) -> None:
    response = requests.get(serve_app(telemetry_path="/custom-metrics").url() + "/", timeout=5)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
    assert 'href="/custom-metrics"' in response.text
    assert "pool-a" in response.text and "pool-b" in response.text and "not polled yet" in response.text
    assert "&lt;b&gt;boom&lt;/b&gt;" in response.text and "<b>boom" not in response.text
    assert "runtime view: server:" in response.text and "list read, 2 failing" in response.text  # which part failed and why


def test_healthz_and_readyz(serve_app: Callable[..., Served], publisher: Publisher) -> None:
    url = serve_app().url()
    assert requests.get(url + "/healthz", timeout=5).status_code == 200
    assert requests.get(url + "/readyz", timeout=5).status_code == 503
    pools = tuple(PoolStatus(status.ref, polled=True) for status in publisher.current.snapshot.pools)
    publisher.publish(Snapshot(pools=pools, arm=ArmStatsSnapshot(), interval=30, cycles=1))
    assert requests.get(url + "/readyz", timeout=5).status_code == 200


def test_unknown_path_is_404_other_methods_405_and_head_works(serve_app: Callable[..., Served]) -> None:
    url = serve_app().url()
    assert requests.get(url + "/nope", timeout=5).status_code == 404
    head = requests.head(url + "/healthz", timeout=5)
    assert head.status_code == 200 and head.content == b"" and head.headers["Content-Length"] == "3"
    deleted = requests.delete(url + "/metrics", timeout=5)
    assert deleted.status_code == 405 and deleted.headers["Allow"] == "GET, HEAD"


def test_a_route_can_be_added(serve_app: Callable[..., Served]) -> None:
    served = serve_app(config=WebConfig(headers={"X-Frame-Options": "deny"}))

    async def status(request: web.BaseRequest) -> web.StreamResponse:
        return web.json_response({"pools": 2})

    served.app.add_route("/status.json", status)
    response = requests.get(served.url() + "/status.json", timeout=5)
    assert response.json() == {"pools": 2} and response.headers["X-Frame-Options"] == "deny"


@pytest.mark.parametrize(
    ("address", "expected"),
    [(":9863", ("", 9863)), ("0.0.0.0:80", ("0.0.0.0", 80)), ("[::1]:9863", ("::1", 9863)), ("localhost:0", ("localhost", 0))],
)
def test_parse_listen_address(address: str, expected: tuple[str, int]) -> None:
    assert parse_listen_address(address) == expected


@pytest.mark.parametrize("address", ["9863", "host:", "host:port", ":70000", ""])
def test_parse_listen_address_rejects(address: str) -> None:
    with pytest.raises(ValueError):
        parse_listen_address(address)


def test_web_counters_have_no_created_series(serve_app: Callable[..., Served]) -> None:
    text = requests.get(serve_app().url() + "/metrics", timeout=5).text
    for line in (
        "azure_standby_pool_web_auth_failures_total 0.0",
        "azure_standby_pool_web_auth_throttled_total 0.0",
        "azure_standby_pool_web_tls_handshake_failures_total 0.0",
        'azure_standby_pool_web_connections_closed_total{reason="limit"} 0.0',
        'azure_standby_pool_web_connections_closed_total{reason="head_timeout"} 0.0',
        'azure_standby_pool_web_connections_closed_total{reason="write_timeout"} 0.0',
    ):
        assert line in text
    assert "_created" not in text


def test_scrapes_serve_the_pre_rendered_snapshot(serve_app: Callable[..., Served], monkeypatch: pytest.MonkeyPatch) -> None:
    served = serve_app()
    monkeypatch.setattr("exporter.exposition.render", lambda snapshot: pytest.fail("rendered at scrape time"))
    monkeypatch.setattr("exporter.collector.SnapshotCollector.collect", lambda self: pytest.fail("collected at scrape time"))
    assert "azure_standby_pool_up" in requests.get(served.url() + "/metrics", timeout=5).text


def test_stop_does_not_wait_for_idle_keep_alive_connections(serve_app: Callable[..., Served]) -> None:
    served = serve_app()
    with session() as s:
        assert s.get(served.url() + "/healthz", timeout=5).status_code == 200  # the connection stays open
        started = time.monotonic()
        served.server.stop()
        assert time.monotonic() - started < 2.5
        with pytest.raises(requests.exceptions.ConnectionError):
            s.get(served.url() + "/healthz", timeout=2)


# --- request framing: bodies never become requests; bad heads -------------------------------------


SMUGGLED = b"POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"


@pytest.mark.parametrize(
    "framing",
    [
        b"Content-Length: %d\r\n\r\n" % len(SMUGGLED) + SMUGGLED,
        b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % len(SMUGGLED) + SMUGGLED + b"\r\n0\r\n\r\n",
    ],
    ids=["content-length", "chunked"],
)
def test_a_reload_hidden_in_a_get_body_is_never_run(serve_app: Callable[..., Served], framing: bytes) -> None:
    calls: list[int] = []
    served = serve_app(reload=lambda: calls.append(1) or done([]), enable_lifecycle=True)
    answer = raw_request(served.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + framing
                         + b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", answer)
    assert statuses == [b"200", b"503"]  # /healthz, then the next real request; the body was a body
    assert calls == []


def test_ambiguous_framing_is_refused(serve_app: Callable[..., Served]) -> None:
    calls: list[int] = []
    served = serve_app(reload=lambda: calls.append(1) or done([]), enable_lifecycle=True)
    answer = raw_request(served.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
                         + b"0\r\n\r\n" + SMUGGLED)
    assert answer.startswith(b"HTTP/1.0 400 ") and answer.count(b"HTTP/1.") == 1
    assert calls == []


def test_a_request_line_over_the_limit_is_414_and_too_many_headers_431(serve_app: Callable[..., Served]) -> None:
    served = serve_app(config=WebConfig(headers={"X-Frame-Options": "deny"}))
    long_line = raw_request(served.port, b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert long_line.split(b"\r\n")[0].split(b" ")[1] == b"414" and b"X-Frame-Options: deny" in long_line
    many = raw_request(served.port, b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(101)) + b"\r\n")
    assert many.split(b"\r\n")[0].split(b" ")[1] == b"431" and b"X-Frame-Options: deny" in many
    long_header = raw_request(served.port, b"GET / HTTP/1.1\r\nX-Big: " + b"b" * 10_000 + b"\r\n\r\n")
    assert long_header.split(b"\r\n")[0].split(b" ")[1] == b"431" and b"X-Frame-Options: deny" in long_header


# --- limits and deadlines ------------------------------------------------------------------------


def test_a_trickling_client_is_cut_off_by_the_head_deadline(serve_app: Callable[..., Served]) -> None:
    served = serve_app(limits=Limits(head_timeout=0.5))
    trickling = socket.create_connection(("127.0.0.1", served.port), timeout=5)
    stop = threading.Event()
    sent: list[int] = []

    def trickle() -> None:  # one byte every 50 ms: each read is quick, the whole head is too slow
        for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 200:
            if stop.wait(0.05):
                return
            try:
                trickling.send(bytes([byte]))
                sent.append(byte)
            except OSError:
                return

    sender = threading.Thread(target=trickle)
    sender.start()
    try:
        assert requests.get(served.url() + "/healthz", timeout=5).status_code == 200  # others are served meanwhile
        trickling.settimeout(5)
        assert trickling.recv(1) == b""  # closed by the server, without an answer
        assert len(sent) < 200
        assert served.counter("azure_standby_pool_web_connections_closed_total", reason="head_timeout") == 1
    finally:
        stop.set()
        sender.join()
        trickling.close()


def test_a_silent_connection_is_closed_by_the_head_deadline(serve_app: Callable[..., Served]) -> None:
    served = serve_app(limits=Limits(head_timeout=0.3))
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as silent:
        assert silent.recv(1) == b""
    wait_until(lambda: served.counter("azure_standby_pool_web_connections_closed_total", reason="head_timeout") == 1)


def test_a_kept_alive_connection_may_idle_between_requests(serve_app: Callable[..., Served]) -> None:
    served = serve_app(limits=Limits(head_timeout=0.3, idle_timeout=30))
    with session() as s:
        assert s.get(served.url() + "/healthz", timeout=5).status_code == 200
        time.sleep(0.6)  # longer than the head deadline: idle, not a slow head
        assert s.get(served.url() + "/healthz", timeout=5).status_code == 200
    assert served.counter("azure_standby_pool_web_connections_closed_total", reason="head_timeout") == 0


def test_at_the_connection_limit_the_longest_idle_connection_makes_room(serve_app: Callable[..., Served]) -> None:
    served = serve_app(limits=Limits(max_connections=4))
    idle = [socket.create_connection(("127.0.0.1", served.port), timeout=5) for _ in range(4)]
    try:
        wait_until(lambda: served.server.open_connections() == 4)
        assert requests.get(served.url() + "/metrics", timeout=5).status_code == 200
        assert idle[0].recv(1) == b""  # the oldest was closed to admit the scrape
        assert served.counter("azure_standby_pool_web_connections_closed_total", reason="limit") == 1
        assert served.server.open_connections() <= 4
    finally:
        for sock in idle:
            sock.close()


def test_when_every_connection_is_busy_a_new_one_is_closed(serve_app: Callable[..., Served]) -> None:
    served = serve_app(limits=Limits(max_connections=2))
    release = threading.Event()

    async def slow(request: web.BaseRequest) -> web.StreamResponse:
        await asyncio.get_running_loop().run_in_executor(None, release.wait, 10)
        return web.Response(text="done\n")

    served.app.add_route("/slow", slow)
    results: list[int] = []
    busy = [threading.Thread(target=lambda: results.append(requests.get(served.url() + "/slow", timeout=10).status_code)) for _ in range(2)]
    for thread in busy:
        thread.start()
    try:
        wait_until(lambda: served.server.open_connections() == 2)
        time.sleep(0.2)
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(served.url() + "/healthz", timeout=5)
        assert served.counter("azure_standby_pool_web_connections_closed_total", reason="limit") == 1
    finally:
        release.set()
        for thread in busy:
            thread.join()
    assert results == [200, 200]


def test_keep_alive_is_limited_per_connection(serve_app: Callable[..., Served]) -> None:
    served = serve_app(limits=Limits(max_requests_per_connection=2))
    with session() as s:
        first = s.get(served.url() + "/healthz", timeout=5)
        second = s.get(served.url() + "/healthz", timeout=5)
    assert first.headers.get("Connection", "").lower() != "close"
    assert second.headers["Connection"].lower() == "close"


def test_a_client_that_does_not_read_its_answer_is_cut_off(serve_app: Callable[..., Served]) -> None:
    served = serve_app(limits=Limits(write_timeout=0.5))

    async def big(request: web.BaseRequest) -> web.StreamResponse:
        return web.Response(body=b"x" * (64 * 1024 * 1024))

    served.app.add_route("/big", big)
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_until(lambda: served.counter("azure_standby_pool_web_connections_closed_total", reason="write_timeout") == 1, timeout=10)
    assert requests.get(served.url() + "/healthz", timeout=5).status_code == 200


# --- --web.config.file: TLS, basic auth, headers; /-/reload -------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("pki"))


def web_config(pki: TlsFiles, text: str) -> WebConfig:
    path = pki.ca_cert.parent / f"web-{abs(hash(text))}.yml"
    path.write_text(text)
    return load_web_config(path)


TLS = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
MTLS = TLS + "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n"
ALICE = "basic_auth_users:\n  alice: " + bcrypt.hashpw(b"alice-secret", bcrypt.gensalt(rounds=4)).decode() + "\n"
HEADERS = "http_server_config:\n  headers:\n    X-Frame-Options: deny\n    Strict-Transport-Security: max-age=60\n"


def test_basic_auth_on_every_path_and_method(pki: TlsFiles, serve_app: Callable[..., Served]) -> None:
    served = serve_app(web_config(pki, ALICE), enable_lifecycle=True, reload=lambda: done([]))
    url = served.url()
    for method, path in [("GET", "/metrics"), ("GET", "/"), ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/nope"),
                         ("HEAD", "/metrics"), ("POST", "/-/reload"), ("PUT", "/-/reload"), ("DELETE", "/metrics")]:
        response = requests.request(method, url + path, timeout=5)
        assert response.status_code == 401, (method, path)
        assert response.headers["WWW-Authenticate"] == 'Basic realm="standby-pool-exporter"'
    assert requests.get(url + "/metrics", auth=("alice", "wrong"), timeout=5).status_code == 401
    assert requests.get(url + "/metrics", auth=("bob", "alice-secret"), timeout=5).status_code == 401
    assert requests.get(url + "/metrics", headers={"Authorization": "Bearer alice-secret"}, timeout=5).status_code == 401
    assert served.counter("azure_standby_pool_web_auth_failures_total") == 12

    ok = requests.get(url + "/metrics", auth=("alice", "alice-secret"), timeout=5)
    assert ok.status_code == 200 and "azure_standby_pool_web_auth_failures_total 12.0" in ok.text
    assert requests.post(url + "/-/reload", auth=("alice", "alice-secret"), timeout=5).status_code == 200
    assert requests.delete(url + "/metrics", auth=("alice", "alice-secret"), timeout=5).status_code == 405
    assert served.counter("azure_standby_pool_web_auth_failures_total") == 12


def test_auth_is_checked_per_request_with_the_current_config(pki: TlsFiles, serve_app: Callable[..., Served]) -> None:
    served = serve_app()
    with session() as s:  # one keep-alive connection throughout
        assert s.get(served.url() + "/healthz", timeout=5).status_code == 200
        served.holder.config = web_config(pki, ALICE)
        assert s.get(served.url() + "/healthz", timeout=5).status_code == 401
        assert s.get(served.url() + "/healthz", auth=("alice", "alice-secret"), timeout=5).status_code == 200


def test_a_refused_request_with_a_body_closes_the_connection(pki: TlsFiles, serve_app: Callable[..., Served]) -> None:
    served = serve_app(web_config(pki, ALICE))
    request = b"POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    answer = raw_request(served.port, request)
    assert answer.startswith(b"HTTP/1.1 401 ") and answer.count(b"HTTP/1.1 ") == 1


def test_an_auth_flood_is_refused_with_429_and_a_verified_client_keeps_being_served(
    pki: TlsFiles, serve_app: Callable[..., Served], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = bcrypt.checkpw
    gate = threading.Event()
    monkeypatch.setattr(bcrypt, "checkpw", lambda password, hashed: gate.wait(10) and real(password, hashed))
    served = serve_app(web_config(pki, ALICE), authenticator=Authenticator(workers=1, queue_size=2))
    gate.set()
    assert requests.get(served.url() + "/healthz", auth=("alice", "alice-secret"), timeout=5).status_code == 200  # verified
    gate.clear()
    statuses: list[int] = []
    retry_after: set[str] = set()

    def wrong() -> None:
        response = requests.get(served.url() + "/healthz", auth=("alice", "wrong"), timeout=15)
        statuses.append(response.status_code)
        if response.status_code == 429:
            retry_after.add(response.headers["Retry-After"])

    flood = [threading.Thread(target=wrong) for _ in range(20)]
    for thread in flood:
        thread.start()
    wait_until(lambda: len(statuses) >= 17, timeout=10)  # 3 are held by the (gated) bcrypt worker and its queue
    assert statuses.count(429) == 17 and retry_after == {"1"}
    assert requests.get(served.url() + "/metrics", auth=("alice", "alice-secret"), timeout=5).status_code == 200  # cached
    gate.set()
    for thread in flood:
        thread.join()
    assert sorted(statuses) == [401] * 3 + [429] * 17
    assert served.counter("azure_standby_pool_web_auth_failures_total") == 3  # a 429 is not an auth failure
    assert served.counter("azure_standby_pool_web_auth_throttled_total") == 17


def test_configured_headers_on_every_response(pki: TlsFiles, serve_app: Callable[..., Served]) -> None:
    served = serve_app(web_config(pki, HEADERS + ALICE))
    url = served.url()
    auth = ("alice", "alice-secret")
    responses = [
        requests.get(url + "/metrics", auth=auth, timeout=5),
        requests.get(url + "/nope", auth=auth, timeout=5),
        requests.get(url + "/metrics", timeout=5),  # 401
        requests.post(url + "/-/reload", auth=auth, timeout=5),  # 403
        requests.delete(url + "/", auth=auth, timeout=5),  # 405
    ]
    assert [r.status_code for r in responses] == [200, 404, 401, 403, 405]
    for response in responses:
        assert response.headers["X-Frame-Options"] == "deny"
        assert response.headers["Strict-Transport-Security"] == "max-age=60"
    too_many_headers = b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(101)) + b"\r\n"
    answer = raw_request(served.port, too_many_headers)  # refused by the parser, before auth
    assert b" 431 " in answer.split(b"\r\n")[0] and b"X-Frame-Options: deny" in answer


def test_no_web_config_means_no_extra_headers(serve_app: Callable[..., Served]) -> None:
    headers = requests.get(serve_app().url() + "/healthz", timeout=5).headers
    assert "X-Frame-Options" not in headers and "WWW-Authenticate" not in headers
    assert headers["Server"].startswith("standby-pool-exporter/")


def test_https_with_the_current_config_per_connection(pki: TlsFiles, serve_app: Callable[..., Served]) -> None:
    served = serve_app()
    assert requests.get(served.url() + "/healthz", timeout=5).status_code == 200
    served.holder.config = web_config(pki, TLS)
    response = requests.get(served.url("https") + "/metrics", verify=str(pki.ca_cert), timeout=5)
    assert response.status_code == 200 and "azure_standby_pool_up" in response.text
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(served.url() + "/healthz", timeout=5)  # plain HTTP is now a failed handshake
    wait_until(lambda: served.counter("azure_standby_pool_web_tls_handshake_failures_total") == 1)


def test_https_keep_alive_and_pipelined_requests(pki: TlsFiles, serve_app: Callable[..., Served]) -> None:
    served = serve_app(web_config(pki, TLS))
    with session() as s:
        for _ in range(3):
            assert s.get(served.url("https") + "/healthz", verify=str(pki.ca_cert), timeout=5).status_code == 200
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as raw, context.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
    assert answer.count(b"HTTP/1.1 200 ") == 1 and answer.count(b"HTTP/1.1 503 ") == 1


def test_mutual_tls_failures_are_counted_and_logged_at_debug(
    pki: TlsFiles, serve_app: Callable[..., Served], caplog: pytest.LogCaptureFixture
) -> None:
    served = serve_app(web_config(pki, MTLS))
    url, ca = served.url("https") + "/healthz", str(pki.ca_cert)
    with caplog.at_level(logging.DEBUG, logger="exporter.server"):
        assert requests.get(url, verify=ca, cert=pki.client_pair, timeout=5).status_code == 200
        for cert in (None, pki.wrong_client_pair):
            with pytest.raises(requests.exceptions.ConnectionError):
                requests.get(url, verify=ca, cert=cert, timeout=5)
        wait_until(lambda: served.counter("azure_standby_pool_web_tls_handshake_failures_total") == 2)
    failures = [r for r in caplog.records if r.getMessage() == "TLS handshake failed"]
    assert len(failures) == 2 and {r.levelno for r in failures} == {logging.DEBUG}
    assert all("CERTIFICATE" in r.err for r in failures)  # type: ignore[attr-defined]


def test_the_handshake_has_a_total_deadline(pki: TlsFiles, serve_app: Callable[..., Served]) -> None:
    served = serve_app(web_config(pki, TLS), limits=Limits(handshake_timeout=0.5))
    hello = _client_hello(pki)
    silent = socket.create_connection(("127.0.0.1", served.port), timeout=5)
    trickling = socket.create_connection(("127.0.0.1", served.port), timeout=5)
    stop = threading.Event()

    def trickle() -> None:  # one byte every 50 ms for 2.5 s: each read is quick, the whole is too slow
        for byte in hello[:50]:
            if stop.wait(0.05):
                return
            try:
                trickling.send(bytes([byte]))
            except OSError:
                return

    sender = threading.Thread(target=trickle)
    sender.start()
    try:
        # others are served meanwhile: each handshake is a task of the event loop
        assert requests.get(served.url("https") + "/healthz", verify=str(pki.ca_cert), timeout=5).status_code == 200
        wait_until(lambda: served.counter("azure_standby_pool_web_tls_handshake_failures_total") == 2, timeout=5)
        assert sender.is_alive()  # cut off while still trickling
        silent.settimeout(5)
        assert silent.recv(1) == b""  # closed by the server
    finally:
        stop.set()
        sender.join()
        silent.close()
        trickling.close()


def _client_hello(pki: TlsFiles) -> bytes:
    """The bytes of a real TLS ClientHello, captured with a memory BIO."""
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def test_reload_endpoint_needs_the_lifecycle_flag(serve_app: Callable[..., Served]) -> None:
    calls: list[int] = []
    served = serve_app(reload=lambda: calls.append(1) or done([]))
    response = requests.post(served.url() + "/-/reload", timeout=5)
    assert (response.status_code, response.text) == (403, "Lifecycle API is not enabled.\n")
    response = requests.get(served.url() + "/-/reload", timeout=5)
    assert response.status_code == 405 and response.headers["Allow"] == "POST, PUT"
    assert calls == []


def test_reload_endpoint_outcomes(serve_app: Callable[..., Served]) -> None:
    outcomes: list[list[str] | Exception] = [[], ["polling.interval: bad", "pools: is required"], ReloadNotSupported("not in --demo mode")]

    def reload() -> Future[list[str]]:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return done(outcome)

    served = serve_app(reload=reload, enable_lifecycle=True)
    url = served.url() + "/-/reload"
    with session() as s:  # small bodies are read, the connection is reused
        ok = s.post(url, data=b"x" * 1000, timeout=5)
        assert (ok.status_code, ok.text) == (200, "configuration reloaded\n")
        failed = s.put(url, timeout=5)
        assert failed.status_code == 500
        assert failed.text == "failed to reload config:\n  - polling.interval: bad\n  - pools: is required\n"
        unsupported = s.post(url, timeout=5)
        assert (unsupported.status_code, unsupported.text) == (400, "not in --demo mode\n")
    assert requests.post(served.url() + "/metrics", timeout=5).status_code == 405
    assert requests.post(served.url() + "/elsewhere", timeout=5).status_code == 404


def test_a_large_reload_body_is_not_read_and_closes_the_connection(serve_app: Callable[..., Served]) -> None:
    calls: list[int] = []
    served = serve_app(reload=lambda: calls.append(1) or done([]), enable_lifecycle=True, limits=Limits(max_body=100))
    answer = raw_request(served.port, b"POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n" + b"x" * 1000)
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.count(b"HTTP/1.1 ") == 1 and calls == [1]


def test_reload_endpoint_without_a_reload_function(serve_app: Callable[..., Served]) -> None:
    served = serve_app(enable_lifecycle=True)
    assert requests.post(served.url() + "/-/reload", timeout=5).status_code == 400
