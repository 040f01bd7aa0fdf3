"""Request handling: basic auth on every path and method, the routes, configured headers on every answer.

Routes: ``/`` landing page, the telemetry path (pre-rendered snapshot plus the small live registry),
``/healthz``, ``/readyz`` and ``POST``/``PUT /-/reload``. ``ExporterApp.add_route`` adds more (a
status page, static assets). A known path with another method is 405 with ``Allow``; others 404.

Nothing here reads a file or blocks: the web config is the watcher's last good copy, bcrypt runs on
the bounded queue of :mod:`exporter.basicauth`, a reload on the reloader's own thread.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import ssl
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.registry import Collector

from . import __version__
from . import collector as catalogue
from .basicauth import Authenticator, Verdict
from .exposition import Publisher
from .landing import landing_page
from .server import Limits
from .webconfig import WebConfig

log = logging.getLogger("exporter.server")

REALM = "standby-pool-exporter"
SERVER = f"standby-pool-exporter/{__version__}"
RETRY_AFTER_SECONDS = 1  # a client refused because the bcrypt queue is full may retry this soon
CLOSE_REASONS = ("limit", "head_timeout", "write_timeout")
_TEXT = "text/plain; charset=utf-8"
_NO_WEB_CONFIG = WebConfig()

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


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


def _counter(family: catalogue.Family) -> Counter:
    """A live counter declared in the metric catalogue (name, help and labels come from there)."""
    return Counter(family.full_name, family.help, list(family.labels), registry=None)


class WebMetrics:
    """Counters of refused connections and requests, rendered with the live registry at scrape time."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.auth_failures = _counter(catalogue.BY_NAME["web_auth_failures"])
        self.auth_throttled = _counter(catalogue.BY_NAME["web_auth_throttled"])
        self.tls_handshake_failures = _counter(catalogue.BY_NAME["web_tls_handshake_failures"])
        self.connections_closed = _counter(catalogue.BY_NAME["web_connections_closed"])
        for reason in CLOSE_REASONS:
            self.connections_closed.labels(reason)
        if registry is not None:
            for metric in (self.auth_failures, self.auth_throttled, self.tls_handshake_failures, self.connections_closed):
                registry.register(_WithoutCreated(metric))


@dataclass(frozen=True)
class Route:
    handler: Handler
    methods: tuple[str, ...] = ("GET", "HEAD")


class ExporterApp:
    """What the server serves: the published snapshot, the small scrape-time registry, the web config.

    ``web_config`` returns the current :class:`WebConfig` (``WebConfigWatcher.current``: no I/O).
    ``reload`` starts a configuration reload and returns its future (problems; empty: success), or
    raises :class:`ReloadNotSupported`; ``POST /-/reload`` calls it only when ``enable_lifecycle``.
    """

    def __init__(
        self,
        publisher: Publisher,
        live_registry: CollectorRegistry,
        telemetry_path: str = "/metrics",
        *,
        web_config: Callable[[], WebConfig] | None = None,
        reload: Callable[[], Future[list[str]]] | None = None,
        enable_lifecycle: bool = False,
        authenticator: Authenticator | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.publisher = publisher
        self.live_registry = live_registry  # process and web metrics: cheap, rendered per scrape
        self.telemetry_path = telemetry_path
        self.web_config: Callable[[], WebConfig] = web_config or (lambda: _NO_WEB_CONFIG)
        self.reload = reload
        self.enable_lifecycle = enable_lifecycle
        self.authenticator = authenticator or Authenticator()
        self.limits = limits or Limits()
        self.web_metrics = WebMetrics(live_registry)
        self.routes: dict[str, Route] = {}
        self.add_route(telemetry_path, self._metrics)
        self.add_route("/", self._landing)
        self.add_route("/healthz", self._healthz)
        self.add_route("/readyz", self._readyz)
        self.add_route("/-/reload", self._reload, ("POST", "PUT"))

    def add_route(self, path: str, handler: Handler, methods: tuple[str, ...] = ("GET", "HEAD")) -> None:
        """Serve ``path`` with ``handler`` (behind basic auth, with the configured headers)."""
        self.routes[path] = Route(handler, methods)

    # -- what the server calls -----------------------------------------------------------------------
    def ssl_context(self) -> ssl.SSLContext | None:
        return self.web_config().ssl_context()

    def response_headers(self) -> dict[str, str]:
        return {"Server": SERVER, **self.web_config().headers}

    def tls_handshake_failed(self, client: str, error: str) -> None:
        self.web_metrics.tls_handshake_failures.inc()
        log.debug("TLS handshake failed", extra={"client": client, "err": error})

    def connection_closed(self, reason: str) -> None:
        self.web_metrics.connections_closed.labels(reason).inc()

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        """Authorize, route, add the configured headers."""
        config = self.web_config()
        verdict = self.authenticator.begin(config.basic_auth_users, request.headers.get("Authorization"))
        if isinstance(verdict, Future):
            verdict = await asyncio.wrap_future(verdict)
        if verdict is Verdict.ALLOWED:
            response = await self._route(request)
        else:
            response = self._refuse(request, verdict)
        response.headers["Server"] = SERVER
        response.headers.update(config.headers)
        log.debug("http request", extra={"client": request.remote, "method": request.method, "path": request.path, "status": response.status})
        return response

    def _refuse(self, request: web.BaseRequest, verdict: Verdict) -> web.Response:
        if verdict is Verdict.BUSY:
            self.web_metrics.auth_throttled.inc()
            response = _text(429, "too many password checks in progress: retry later\n", {"Retry-After": str(RETRY_AFTER_SECONDS)})
        else:
            self.web_metrics.auth_failures.inc()
            log.debug("unauthorized request", extra={"client": request.remote, "method": request.method, "path": request.path})
            response = _text(401, "Unauthorized\n", {"WWW-Authenticate": f'Basic realm="{REALM}"'})
        if request.body_exists:
            response.force_close()  # its body is not read
        return response

    async def _route(self, request: web.BaseRequest) -> web.StreamResponse:
        route = self.routes.get(request.path)
        if route is None:
            return _text(404, "not found\n")
        if request.method not in route.methods:
            allowed = ", ".join(route.methods)
            return _text(405, f"Only {' or '.join(route.methods)} requests allowed\n", {"Allow": allowed})
        return await route.handler(request)

    # -- endpoints -----------------------------------------------------------------------------------
    async def _metrics(self, request: web.BaseRequest) -> web.StreamResponse:
        """Pre-rendered snapshot bytes plus the small live part: a scrape costs the same at any series count.

        With gzip, the cached compressed snapshot and the compressed live part are sent as two gzip
        members, which RFC 1952 readers (Prometheus, curl, urllib3) decode as one stream.
        """
        _, content_type = choose_encoder(request.headers.get("Accept", ""))
        use_openmetrics = content_type.startswith("application/openmetrics-text")
        exposition = self.publisher.current.exposition
        live = (openmetrics.generate_latest if use_openmetrics else generate_latest)(self.live_registry)
        headers = {"Content-Type": content_type, "Vary": "Accept-Encoding"}
        if accepts_gzip(request.headers.get("Accept-Encoding")):
            body = exposition.gzipped(use_openmetrics) + gzip.compress(live, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        else:
            body = exposition.body(use_openmetrics) + live
        return web.Response(status=200, body=body, headers=headers)

    async def _landing(self, request: web.BaseRequest) -> web.StreamResponse:
        page = landing_page(self.publisher.current.snapshot, self.telemetry_path)
        return web.Response(status=200, body=page.encode(), headers={"Content-Type": "text/html; charset=utf-8"})

    async def _healthz(self, request: web.BaseRequest) -> web.StreamResponse:
        return _text(200, "ok\n")

    async def _readyz(self, request: web.BaseRequest) -> web.StreamResponse:
        if self.publisher.current.snapshot.ready:
            return _text(200, "ready\n")
        return _text(503, "not ready: polling every pool once\n")

    async def _reload(self, request: web.BaseRequest) -> web.StreamResponse:
        """Prometheus' lifecycle API: 403 unless enabled; 200 reloaded, 500 with the problems, 400 unsupported."""
        if not self.enable_lifecycle:
            return _text(403, "Lifecycle API is not enabled.\n")
        timed_out = not await self._read_small_body(request)
        if timed_out:
            response = _text(408, "request body not received in time\n")
            response.force_close()
            return response
        try:
            if self.reload is None:
                raise ReloadNotSupported("configuration reload is not supported")
            problems = await asyncio.wrap_future(self.reload())
        except ReloadNotSupported as exc:
            return _text(400, f"{exc}\n")
        if problems:
            return _text(500, "failed to reload config:\n" + "".join(f"  - {problem}\n" for problem in problems))
        return _text(200, "configuration reloaded\n")

    async def _read_small_body(self, request: web.BaseRequest) -> bool:
        """Read a small body so the connection can be reused (larger ones close it); False on the deadline."""
        length = request.content_length
        if not request.body_exists or length is None or length > self.limits.max_body:
            return True  # nothing to read, or not read: aiohttp closes the connection after the answer
        if request.headers.get("Expect", "").lower() == "100-continue" and request.version >= (1, 1):
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        try:
            await asyncio.wait_for(request.read(), self.limits.body_timeout)
        except TimeoutError:
            return False
        return True


def accepts_gzip(header: str | None) -> bool:
    """Does ``Accept-Encoding`` accept gzip? ``q=0`` refuses it; ``*`` covers it unless gzip is listed."""
    if not header:
        return False
    gzip_q: float | None = None
    star_q: float | None = None
    for part in header.split(","):
        coding, *params = part.split(";")
        coding = coding.strip().lower()
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
                if not 0.0 <= q <= 1.0:  # also NaN
                    q = 0.0
        if coding in ("gzip", "x-gzip"):
            gzip_q = q if gzip_q is None else max(gzip_q, q)
        elif coding == "*":
            star_q = q
    if gzip_q is not None:
        return gzip_q > 0
    return star_q is not None and star_q > 0


def _text(status: int, text: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=text.encode(), headers={"Content-Type": _TEXT, **(headers or {})})
