"""HTTP endpoints over a real loopback socket; --web.config.file (real TLS) and /-/reload."""

from __future__ import annotations

import gzip
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import bcrypt
import pytest
import requests
from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from exporter.armstats import ArmStatsSnapshot
from exporter.config import PoolRef
from exporter.exposition import Publisher
from exporter.poller import PoolStatus, Snapshot
from exporter.server import ExporterApp, ExporterHTTPServer, ReloadNotSupported, parse_listen_address, serve
from exporter.webconfig import WebConfig, load_web_config
from tests.support.fakes import SUB
from tests.support.process import wait_until
from tests.support.tls import TlsFiles, make_tls_files


@pytest.fixture
def publisher() -> Publisher:
    return Publisher(
        Snapshot(
            pools=(
                PoolStatus(PoolRef(SUB, "rg", "pool-a"), polled=True, up=False, last_success=None, last_error="server: <b>boom</b>"),
                PoolStatus(PoolRef(SUB, "rg", "pool-b")),
            ),
            arm=ArmStatsSnapshot(),
            interval=30,
        )
    )


@pytest.fixture
def base_url(publisher: Publisher) -> Iterator[str]:
    live = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=live)
    server = ExporterHTTPServer(("127.0.0.1", 0), ExporterApp(publisher, live, "/custom-metrics"))
    serve(server)
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_metrics_on_the_telemetry_path(base_url: str) -> None:
    response = requests.get(base_url + "/custom-metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert 'azure_standby_pool_up{pool="pool-a"' in response.text
    assert requests.get(base_url + "/metrics", timeout=5).status_code == 404


def test_gzip_when_accepted_decodes_to_the_plain_body(base_url: str) -> None:
    response = requests.get(base_url + "/custom-metrics", headers={"Accept-Encoding": "gzip"}, timeout=5, stream=True)
    assert response.headers["Content-Encoding"] == "gzip"
    text = gzip.decompress(response.raw.read()).decode()  # two gzip members: cached snapshot + live part
    plain = requests.get(base_url + "/custom-metrics", timeout=5).text
    families = lambda body: sorted(f.name for f in text_string_to_metric_families(body))  # noqa: E731
    assert families(text) == families(plain)
    assert "azure_standby_pool_up" in families(text) and "process_cpu_seconds" in families(text)


def test_openmetrics_when_negotiated(base_url: str) -> None:
    response = requests.get(base_url + "/custom-metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}, timeout=5)
    assert response.headers["Content-Type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n") and response.text.count("# EOF") == 1
    names = {family.name for family in parse_openmetrics(response.text)}
    assert {"azure_standby_pool_up", "process_cpu_seconds"} <= names
    gzipped = requests.get(base_url + "/custom-metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0", "Accept-Encoding": "gzip"}, timeout=5)
    assert _exporter_lines(gzipped.text) == _exporter_lines(response.text) != []
    assert gzipped.text.endswith("# EOF\n") and gzipped.text.count("# EOF") == 1


def _exporter_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "azure_standby_pool_" in line]


def test_landing_page_lists_pools_escaped(base_url: str) -> None:
    response = requests.get(base_url + "/", timeout=5)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
    assert 'href="/custom-metrics"' in response.text
    assert "pool-a" in response.text and "pool-b" in response.text and "not polled yet" in response.text
    assert "&lt;b&gt;boom&lt;/b&gt;" in response.text and "<b>boom" not in response.text


def test_healthz_and_readyz(base_url: str, publisher: Publisher) -> None:
    assert requests.get(base_url + "/healthz", timeout=5).status_code == 200
    assert requests.get(base_url + "/readyz", timeout=5).status_code == 503
    pools = tuple(PoolStatus(status.ref, polled=True) for status in publisher.current.snapshot.pools)
    publisher.publish(Snapshot(pools=pools, arm=ArmStatsSnapshot(), interval=30, cycles=1))
    assert requests.get(base_url + "/readyz", timeout=5).status_code == 200


def test_unknown_path_is_404_and_head_works(base_url: str) -> None:
    assert requests.get(base_url + "/nope", timeout=5).status_code == 404
    head = requests.head(base_url + "/healthz", timeout=5)
    assert head.status_code == 200 and head.content == b""


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


# --- --web.config.file: TLS, basic auth, headers; /-/reload -------------------------------------


class _Holder:
    """A settable web config source, as WebConfigWatcher.current would be."""

    def __init__(self, config: WebConfig | None = None) -> None:
        self.config = config or WebConfig()
        self.calls = 0

    def __call__(self) -> WebConfig:
        self.calls += 1
        return self.config


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


@dataclass
class Served:
    server: ExporterHTTPServer
    app: ExporterApp
    registry: CollectorRegistry
    holder: _Holder

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def url(self, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}"

    def counter(self, name: str) -> float | None:
        return self.registry.get_sample_value(name)


@pytest.fixture
def serve_app(publisher: Publisher) -> Iterator[Callable[..., Served]]:
    servers: list[ExporterHTTPServer] = []

    def start(config: WebConfig | None = None, **app_options: object) -> Served:
        registry = CollectorRegistry(auto_describe=False)
        holder = _Holder(config)
        app = ExporterApp(publisher, registry, "/metrics", web_config=holder, **app_options)  # type: ignore[arg-type]
        server = ExporterHTTPServer(("127.0.0.1", 0), app)
        serve(server)
        servers.append(server)
        return Served(server, app, registry, holder)

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def session() -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    return s


def raw_request(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def test_basic_auth_on_every_path_and_method(pki: TlsFiles, serve_app: Callable[..., Served]) -> None:
    served = serve_app(web_config(pki, ALICE), enable_lifecycle=True, reload=lambda: [])
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
    assert requests.delete(url + "/metrics", auth=("alice", "alice-secret"), timeout=5).status_code == 501
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
    assert answer.startswith(b"HTTP/1.1 401 ") and answer.count(b"HTTP/1.1 ") == 1  # body not parsed as a request


def test_configured_headers_on_every_response(pki: TlsFiles, serve_app: Callable[..., Served]) -> None:
    served = serve_app(web_config(pki, HEADERS + ALICE))
    url = served.url()
    auth = ("alice", "alice-secret")
    responses = [
        requests.get(url + "/metrics", auth=auth, timeout=5),
        requests.get(url + "/nope", auth=auth, timeout=5),
        requests.get(url + "/metrics", timeout=5),  # 401
        requests.post(url + "/-/reload", auth=auth, timeout=5),  # 403
        requests.delete(url + "/", auth=auth, timeout=5),  # 501 from http.server's send_error
    ]
    assert [r.status_code for r in responses] == [200, 404, 401, 403, 501]
    for response in responses:
        assert response.headers["X-Frame-Options"] == "deny"
        assert response.headers["Strict-Transport-Security"] == "max-age=60"
    too_many_headers = b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(101)) + b"\r\n"
    answer = raw_request(served.port, too_many_headers)  # refused by http.server before auth
    assert answer.startswith(b"HTTP/1.1 431 ") and b"X-Frame-Options: deny" in answer


def test_no_web_config_means_no_extra_headers(serve_app: Callable[..., Served]) -> None:
    served = serve_app()
    headers = requests.get(served.url() + "/healthz", timeout=5).headers
    assert "X-Frame-Options" not in headers and "WWW-Authenticate" not in headers


def test_https_with_the_current_config_per_connection(pki: TlsFiles, serve_app: Callable[..., Served]) -> None:
    served = serve_app()
    assert requests.get(served.url() + "/healthz", timeout=5).status_code == 200
    served.holder.config = web_config(pki, TLS)
    response = requests.get(served.url("https") + "/metrics", verify=str(pki.ca_cert), timeout=5)
    assert response.status_code == 200 and "azure_standby_pool_up" in response.text
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(served.url() + "/healthz", timeout=5)  # plain HTTP is now a failed handshake
    wait_until(lambda: served.counter("azure_standby_pool_web_tls_handshake_failures_total") == 1)


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
    assert "PEER_DID_NOT_RETURN_A_CERTIFICATE" in failures[0].err or "CERTIFICATE" in failures[0].err  # type: ignore[attr-defined]


def test_the_handshake_has_a_total_deadline(pki: TlsFiles, serve_app: Callable[..., Served], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("exporter.server.HANDSHAKE_TIMEOUT", 0.5)
    served = serve_app(web_config(pki, TLS))
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
    started = time.monotonic()
    try:
        # others are served meanwhile: the handshake runs in the connection's thread, not the accept loop
        assert requests.get(served.url("https") + "/healthz", verify=str(pki.ca_cert), timeout=2).status_code == 200
        wait_until(lambda: served.counter("azure_standby_pool_web_tls_handshake_failures_total") == 2, timeout=1.5)
        assert sender.is_alive()  # cut off while still trickling
        assert time.monotonic() - started < 1.5
        silent.settimeout(2)
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


def test_web_counters_have_no_created_series(serve_app: Callable[..., Served]) -> None:
    served = serve_app()
    text = requests.get(served.url() + "/metrics", timeout=5).text
    assert "azure_standby_pool_web_auth_failures_total 0.0" in text
    assert "azure_standby_pool_web_tls_handshake_failures_total 0.0" in text
    assert "_created" not in text


def test_scrapes_serve_the_pre_rendered_snapshot(serve_app: Callable[..., Served], monkeypatch: pytest.MonkeyPatch) -> None:
    served = serve_app()
    monkeypatch.setattr("exporter.exposition.render", lambda snapshot: pytest.fail("rendered at scrape time"))
    monkeypatch.setattr("exporter.collector.SnapshotCollector.collect", lambda self: pytest.fail("collected at scrape time"))
    assert "azure_standby_pool_up" in requests.get(served.url() + "/metrics", timeout=5).text


def test_server_close_does_not_wait_for_idle_keep_alive_connections(serve_app: Callable[..., Served]) -> None:
    served = serve_app()
    with session() as s:
        assert s.get(served.url() + "/healthz", timeout=5).status_code == 200  # the connection stays open
        started = time.monotonic()
        served.server.shutdown()
        served.server.server_close()
        assert time.monotonic() - started < 2


def test_reload_endpoint_needs_the_lifecycle_flag(serve_app: Callable[..., Served]) -> None:
    calls: list[int] = []
    served = serve_app(reload=lambda: calls.append(1) or [])
    response = requests.post(served.url() + "/-/reload", timeout=5)
    assert (response.status_code, response.text) == (403, "Lifecycle API is not enabled.\n")
    response = requests.get(served.url() + "/-/reload", timeout=5)
    assert response.status_code == 405 and response.headers["Allow"] == "POST, PUT"
    assert calls == []


def test_reload_endpoint_outcomes(serve_app: Callable[..., Served]) -> None:
    outcomes: list[list[str] | Exception] = [[], ["polling.interval: bad", "pools: is required"], ReloadNotSupported("not in --demo mode")]

    def reload() -> list[str]:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    served = serve_app(reload=reload, enable_lifecycle=True)
    url = served.url() + "/-/reload"
    with session() as s:  # bodies are read, the connection is reused
        ok = s.post(url, data=b"x" * 1000, timeout=5)
        assert (ok.status_code, ok.text) == (200, "configuration reloaded\n")
        failed = s.put(url, timeout=5)
        assert failed.status_code == 500
        assert failed.text == "failed to reload config:\n  - polling.interval: bad\n  - pools: is required\n"
        unsupported = s.post(url, timeout=5)
        assert (unsupported.status_code, unsupported.text) == (400, "not in --demo mode\n")
    assert requests.post(served.url() + "/metrics", timeout=5).status_code == 405
    assert requests.post(served.url() + "/elsewhere", timeout=5).status_code == 404


def test_reload_endpoint_without_a_reload_function(serve_app: Callable[..., Served]) -> None:
    served = serve_app(enable_lifecycle=True)
    assert requests.post(served.url() + "/-/reload", timeout=5).status_code == 400
