"""HTTP endpoints: ``/`` landing page, the telemetry path, ``/healthz`` and ``/readyz``."""

from __future__ import annotations

import gzip
import html
import logging
import socket
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import choose_encoder
from prometheus_client.openmetrics import exposition as openmetrics

from . import __version__
from .collector import Publisher

log = logging.getLogger(__name__)


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
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: "ExporterApp") -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.app = app
        super().__init__(address, _Handler)


class ExporterApp:
    """What the handler needs: the published snapshot, the small scrape-time registry, the paths."""

    def __init__(self, publisher: Publisher, live_registry: CollectorRegistry, telemetry_path: str = "/metrics") -> None:
        self.publisher = publisher
        self.live_registry = live_registry  # process metrics: cheap, rendered per scrape
        self.telemetry_path = telemetry_path


class _Handler(BaseHTTPRequestHandler):
    server: ExporterHTTPServer
    protocol_version = "HTTP/1.1"
    server_version = f"standby-pool-exporter/{__version__}"

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        app = self.server.app
        path = self.path.split("?", 1)[0]
        if path == app.telemetry_path:
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

