"""HTTP endpoints: ``/`` landing page, the telemetry path, ``/healthz``, ``/readyz`` and ``/-/reload``.

With ``--web.config.file`` (see :mod:`exporter.webconfig`), each accepted connection is wrapped with
the CURRENT web config's SSL context in the connection's own thread, with a handshake timeout, so a
client that never completes its handshake holds only its own thread. Every request on every path
(and with every method) must then pass basic auth when users are configured, and the configured
headers are added to every response.
"""

from __future__ import annotations

import gzip
import html
import logging
import selectors
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.registry import Collector

from . import __version__
from .exposition import Publisher
from .webconfig import WebConfig

log = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT = 10.0  # seconds a client gets to complete its whole TLS handshake
IDLE_TIMEOUT = 120.0  # seconds a connection may sit idle (or a single read/write may block) before it is closed
MAX_REQUEST_BODY = 64 * 1024  # larger request bodies are not read: the connection is closed instead
REALM = "standby-pool-exporter"
_NO_WEB_CONFIG = WebConfig()


class ReloadNotSupported(Exception):
    """Raised by a reload callable when this process cannot reload its configuration (e.g. ``--demo``)."""


class _WithoutCreated(Collector):
    """A prometheus-client metric without its ``_created`` sample (a separate gauge in the text format)."""

    def __init__(self, metric: Collector) -> None:
        self._metric = metric

    def collect(self) -> Iterator[Metric]:
        for family in self._metric.collect():
            family.samples = [sample for sample in family.samples if not sample.name.endswith("_created")]
            yield family


class WebMetrics:
    """Counters of refused connections and requests, rendered with the live registry at scrape time."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.auth_failures = Counter(
            "azure_standby_pool_web_auth_failures_total",
            "HTTP requests refused with 401 because of a wrong or missing basic-auth password.",
            registry=None,
        )
        self.tls_handshake_failures = Counter(
            "azure_standby_pool_web_tls_handshake_failures_total",
            "Connections closed because their TLS handshake failed or timed out.",
            registry=None,
        )
        if registry is not None:
            registry.register(_WithoutCreated(self.auth_failures))
            registry.register(_WithoutCreated(self.tls_handshake_failures))


def parse_listen_address(address: str) -> tuple[str, int]:
    """``:9863``, ``0.0.0.0:9863``, ``[::1]:9863`` -> (host, port); raises ValueError."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"listen address must be [host]:port, got {address!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port_text)


class ExporterHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # server_close() must not wait for idle keep-alive connections
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: "ExporterApp") -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.app = app
        super().__init__(address, _Handler)

    def finish_request(self, request: socket.socket, client_address: tuple[str, int]) -> None:  # type: ignore[override]
        """Runs in the connection's own thread: the TLS handshake (if configured) happens here, bounded."""
        context = self.app.web_config().ssl_context()
        if context is None:
            self.RequestHandlerClass(request, client_address, self)
            return
        try:
            connection = _handshake(context, request, HANDSHAKE_TIMEOUT)
        except OSError as exc:  # ssl.SSLError, the timeout, a reset
            self.app.web_metrics.tls_handshake_failures.inc()
            log.debug("TLS handshake failed", extra={"client": client_address[0], "err": _describe(exc)})
            return
        try:
            self.RequestHandlerClass(connection, client_address, self)
        finally:
            try:
                connection.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            connection.close()

    def handle_error(self, request: object, client_address: tuple[str, int]) -> None:  # type: ignore[override]
        """A client that misbehaves (resets, times out, sends garbage) is logged at debug, without a traceback."""
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            log.debug("connection error", extra={"client": client_address[0], "err": _describe(exc)})
        else:
            log.error("error handling a request", exc_info=True, extra={"client": client_address[0]})


def _handshake(context: ssl.SSLContext, request: socket.socket, timeout: float) -> ssl.SSLSocket:
    """Server-side TLS handshake that must finish within ``timeout`` in total (a trickling client too)."""
    deadline = time.monotonic() + timeout
    request.setblocking(False)
    connection = context.wrap_socket(request, server_side=True, do_handshake_on_connect=False)
    try:
        with selectors.DefaultSelector() as selector:
            while True:
                try:
                    connection.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    event = selectors.EVENT_READ
                except ssl.SSLWantWriteError:
                    event = selectors.EVENT_WRITE
                remaining = deadline - time.monotonic()
                selector.register(connection, event)
                ready = selector.select(remaining) if remaining > 0 else []
                selector.unregister(connection)
                if not ready:
                    raise TimeoutError(f"no complete TLS handshake within {timeout:g}s")
    except BaseException:
        connection.close()
        raise
    connection.setblocking(True)
    return connection


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class ExporterApp:
    """What the handler needs: the published snapshot, the small scrape-time registry, the paths, the web config.

    ``web_config`` returns the current :class:`WebConfig` (e.g. ``WebConfigWatcher.current``); it is
    called once per connection (TLS) and once per request (auth, headers). ``reload`` reloads the
    configuration and returns its problems (empty: success), or raises :class:`ReloadNotSupported`;
    ``POST /-/reload`` calls it only when ``enable_lifecycle`` is true.
    """

    def __init__(
        self,
        publisher: Publisher,
        live_registry: CollectorRegistry,
        telemetry_path: str = "/metrics",
        *,
        web_config: Callable[[], WebConfig] | None = None,
        reload: Callable[[], list[str]] | None = None,
        enable_lifecycle: bool = False,
    ) -> None:
        self.publisher = publisher
        self.live_registry = live_registry  # process and web metrics: cheap, rendered per scrape
        self.telemetry_path = telemetry_path
        self.web_config: Callable[[], WebConfig] = web_config or (lambda: _NO_WEB_CONFIG)
        self.reload = reload
        self.enable_lifecycle = enable_lifecycle
        self.web_metrics = WebMetrics(live_registry)


_TEXT = "text/plain; charset=utf-8"


class _Handler(BaseHTTPRequestHandler):
    server: ExporterHTTPServer
    protocol_version = "HTTP/1.1"
    server_version = f"standby-pool-exporter/{__version__}"
    timeout = IDLE_TIMEOUT
    disable_nagle_algorithm = True  # headers and body are two writes: no delayed-ACK wait on kept-alive scrapes
    _web: WebConfig | None = None
    _status = 0

    def handle_one_request(self) -> None:
        self._web = None  # each request sees the config current when it arrives
        super().handle_one_request()

    def _web_config(self) -> WebConfig:
        if self._web is None:
            self._web = self.server.app.web_config()
        return self._web

    def parse_request(self) -> bool:
        """Parse, then require basic auth on every path and method (when users are configured)."""
        if not super().parse_request():
            return False
        if self._web_config().authorize(self.headers.get("Authorization")):
            return True
        self.server.app.web_metrics.auth_failures.inc()
        log.debug("unauthorized request", extra={"client": self.client_address[0], "method": self.command, "path": self.path.split("?", 1)[0]})
        if self._has_body():
            self.close_connection = True  # its body is not read
        self._send(401, _TEXT, b"Unauthorized\n", {"WWW-Authenticate": f'Basic realm="{REALM}"'})
        return False

    def send_response_only(self, code: int, message: str | None = None) -> None:
        self._status = code
        super().send_response_only(code, message)

    def end_headers(self) -> None:
        """Configured headers go on every final response, errors included (not on ``100 Continue``)."""
        if self._status >= 200:
            for name, value in self._web_config().headers.items():
                self.send_header(name, value)
        super().end_headers()

    def _has_body(self) -> bool:
        return bool(self.headers.get("Transfer-Encoding")) or self.headers.get("Content-Length", "0").strip() not in ("", "0")

    def _discard_body(self) -> None:
        """Read a small request body so the connection can be reused; otherwise close it after the response."""
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            return
        length = self.headers.get("Content-Length", "0").strip() or "0"
        if not length.isdigit() or int(length) > MAX_REQUEST_BODY:
            self.close_connection = True
        elif int(length):
            self.rfile.read(int(length))

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        app = self.server.app
        path = self.path.split("?", 1)[0]
        if path == "/-/reload":
            self._send(405, _TEXT, b"Only POST or PUT requests allowed\n", {"Allow": "POST, PUT"})
        elif path == app.telemetry_path:
            self._metrics(app)
        elif path == "/":
            self._send(200, "text/html; charset=utf-8", _landing_page(app).encode())
        elif path == "/healthz":
            self._send(200, "text/plain; charset=utf-8", b"ok\n")
        elif path == "/readyz":
            ready = app.publisher.current.snapshot.ready
            self._send(200 if ready else 503, "text/plain; charset=utf-8", b"ready\n" if ready else b"not ready: polling every pool once\n")
        else:
            self._send(404, "text/plain; charset=utf-8", b"not found\n")

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        app = self.server.app
        path = self.path.split("?", 1)[0]
        self._discard_body()
        if path == "/-/reload":
            self._reload(app)
        elif path in (app.telemetry_path, "/", "/healthz", "/readyz"):
            self._send(405, _TEXT, b"method not allowed\n", {"Allow": "GET, HEAD"})
        else:
            self._send(404, _TEXT, b"not found\n")

    do_PUT = do_POST  # noqa: N815

    def _reload(self, app: ExporterApp) -> None:
        """Prometheus' lifecycle API: 403 unless enabled; 200 reloaded, 500 with the problems, 400 unsupported."""
        if not app.enable_lifecycle:
            self._send(403, _TEXT, b"Lifecycle API is not enabled.\n")
            return
        try:
            if app.reload is None:
                raise ReloadNotSupported("configuration reload is not supported")
            problems = app.reload()
        except ReloadNotSupported as exc:
            self._send(400, _TEXT, f"{exc}\n".encode())
            return
        if problems:
            body = "failed to reload config:\n" + "".join(f"  - {problem}\n" for problem in problems)
            self._send(500, _TEXT, body.encode())
        else:
            self._send(200, _TEXT, b"configuration reloaded\n")

    def _metrics(self, app: ExporterApp) -> None:
        """Pre-rendered snapshot bytes plus the small live part: a scrape costs the same at any series count.

        With gzip, the cached compressed snapshot and the compressed live part are sent as two gzip
        members, which RFC 1952 readers (Prometheus, curl, urllib3) decode as one stream.
        """
        _, content_type = choose_encoder(self.headers.get("Accept"))
        use_openmetrics = content_type.startswith("application/openmetrics-text")
        exposition = app.publisher.current.exposition
        live = (openmetrics.generate_latest if use_openmetrics else generate_latest)(app.live_registry)
        if "gzip" in (self.headers.get("Accept-Encoding") or ""):
            body = exposition.gzipped(use_openmetrics) + gzip.compress(live, compresslevel=1)
            self._send(200, content_type, body, {"Content-Encoding": "gzip"})
        else:
            self._send(200, content_type, exposition.body(use_openmetrics) + live)

    def _send(self, status: int, content_type: str, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_HEAD = do_GET  # noqa: N815

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server signature
        log.debug("http request", extra={"client": self.address_string(), "request": format % args})


def _landing_page(app: ExporterApp) -> str:
    snapshot = app.publisher.current.snapshot
    rows = "\n".join(
        "<tr><td>{sub}</td><td>{rg}</td><td>{pool}</td><td>{up}</td><td>{success}</td><td>{error}</td></tr>".format(
            sub=html.escape(status.ref.subscription_id),
            rg=html.escape(status.ref.resource_group),
            pool=html.escape(status.ref.name),
            up=("yes" if status.up else "no") if status.polled else "not polled yet",
            success=_format_time(status.last_success),
            error=html.escape(status.last_error or ""),
        )
        for status in snapshot.pools
    )
    path = html.escape(app.telemetry_path)
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Azure Standby Pool Exporter</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}</style>
</head><body>
<h1>Azure Standby Pool Exporter</h1>
<p>Version {html.escape(__version__)}. Values are cached and refreshed every {snapshot.interval:g}s.</p>
<p><a href="{path}">Metrics</a> &middot; <a href="/healthz">Health</a> &middot; <a href="/readyz">Readiness</a></p>
<table><thead><tr><th>Subscription</th><th>Resource group</th><th>Pool</th><th>Up</th><th>Last success</th><th>Last error</th></tr></thead>
<tbody>
{rows}
</tbody></table>
</body></html>
"""


def _format_time(timestamp: float | None) -> str:
    if timestamp is None:
        return "never"
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def serve(server: ExporterHTTPServer) -> threading.Thread:
    """Serve in a background thread; ``server.shutdown()`` stops it."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="http", daemon=True)
    thread.start()
    return thread

