"""HTTP transport: serves the ARM API, the token endpoints and admin calls; applies faults and latency."""

from __future__ import annotations

import secrets
import socket
import struct
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qsl, unquote, urlsplit

from requests.structures import CaseInsensitiveDict

from .admin import PREFIX as ADMIN_PREFIX
from .admin import handle_admin
from .api import ArmApi, error
from .identity import APP_SERVICE_PATH, IdentityEndpoint, is_identity_path
from .reply import Reply
from .routes import parse, subscription_of
from .world import RequestRecord, Simulator


class _HTTPServer(ThreadingHTTPServer):
    """Threading server that remembers open connections so stop() can cut keep-alive clients off."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], sim: Simulator, secret: str) -> None:
        super().__init__(address, _Handler)
        self.sim = sim
        self.arm = ArmApi(sim)
        self.identity = IdentityEndpoint(sim.tokens, secret)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: object, client_address: object) -> None:
        """Clients hanging up are normal; anything else is a simulator bug worth a traceback."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]

    def close_connections(self) -> None:
        """Shut down every open client connection."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: do not wait for delayed ACKs
    server: _HTTPServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        """Stay quiet."""

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._serve()

    def do_POST(self) -> None:  # noqa: N802
        self._serve()

    def do_PUT(self) -> None:  # noqa: N802
        self._serve()

    def do_PATCH(self) -> None:  # noqa: N802
        self._serve()

    def do_DELETE(self) -> None:  # noqa: N802
        self._serve()

    def _serve(self) -> None:
        sim = self.server.sim
        arrived, arrived_wall = sim.clock(), time.time()
        split = urlsplit(self.path)
        path = unquote(split.path)
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        headers: CaseInsensitiveDict[str] = CaseInsensitiveDict(self.headers.items())
        length = int(headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if path.lower().startswith(ADMIN_PREFIX):
            self._send(handle_admin(sim, self.command, path, query, body))
            return
        identity = is_identity_path(path)
        arm = path.lower().startswith("/subscriptions/")
        route = parse(path) if arm else None
        operation = "token" if identity else route.operation if route else "unknown"

        def record(status: int) -> None:
            sim.record(RequestRecord(arrived, arrived_wall, self.command, path, query, subscription_of(path),
                                     status, operation))

        fault = sim.faults.take(path, identity)
        if arm and sim.latency > 0:
            time.sleep(sim.latency)
        if fault is not None and fault.delay > 0:
            time.sleep(fault.delay)
        if fault is not None and fault.reset:
            record(0)
            self._reset()
            return
        if fault is not None and fault.replaces_reply():
            reply = fault.reply()
        elif identity:
            reply = self.server.identity.handle(self.command, path, query, headers)
        elif arm:
            base_url = f"http://{headers.get('Host') or f'127.0.0.1:{self.server.server_port}'}"
            reply = self.server.arm.handle(self.command, path, query, headers, base_url)
        else:
            reply = error(404, "NotFound", f"No such path: {path}")
        record(reply.status)
        self._send(reply, truncate=fault is not None and fault.truncate,
                   correlation=headers.get("x-ms-correlation-request-id"))

    def _send(self, reply: Reply, truncate: bool = False, correlation: str | None = None) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.send_header("Cache-Control", "no-cache")
        self.send_header("x-ms-request-id", str(uuid.uuid4()))
        self.send_header("x-ms-correlation-request-id", correlation or str(uuid.uuid4()))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if truncate:
            self.wfile.write(reply.body[: len(reply.body) // 2])
            self.close_connection = True
        else:
            self.wfile.write(reply.body)

    def _reset(self) -> None:
        """Abort the connection with a TCP RST instead of replying."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()  # drop the makefile reference so close() really closes the socket
        self.connection.close()


class SimulatorServer:
    """Runs a Simulator behind HTTP in background threads (optionally ticking it every ``tick_interval``)."""

    def __init__(self, sim: Simulator, host: str = "127.0.0.1", port: int = 0,
                 tick_interval: float | None = None) -> None:
        self.sim = sim
        self.identity_header = secrets.token_hex(16)
        self._host = "127.0.0.1" if host in ("", "0.0.0.0") else host
        self._httpd = _HTTPServer((host, port), sim, self.identity_header)
        self._tick_interval = tick_interval
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        """ARM base URL, e.g. http://127.0.0.1:PORT."""
        return f"http://{self._host}:{self._httpd.server_port}"

    @property
    def identity_endpoint(self) -> str:
        """App Service style managed identity endpoint (IDENTITY_ENDPOINT)."""
        return self.url + APP_SERVICE_PATH

    def start(self) -> SimulatorServer:
        """Serve in background threads; return self."""
        self._threads.append(threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="simulator-http", daemon=True))
        if self._tick_interval is not None:
            self._threads.append(threading.Thread(target=self._tick_loop, name="simulator-tick", daemon=True))
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, cut open connections and release the port."""
        self._stopping.set()
        if self._threads:
            self._httpd.shutdown()
        self._httpd.close_connections()
        self._httpd.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()

    def _tick_loop(self) -> None:
        assert self._tick_interval is not None
        while not self._stopping.wait(self._tick_interval):
            self.sim.tick()

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
