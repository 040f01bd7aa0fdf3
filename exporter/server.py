"""The HTTP layer: aiohttp's low-level server on one asyncio event loop, with the limits a daemon needs.

Why aiohttp (see the README's design notes): idle connections cost a file descriptor and a small
object, not a thread; its llhttp parser reads a request body on every method as a body (never as the
next request) and refuses ambiguous framing. What the library does not give is added here:

* a connection limit (``max_connections``, lowered to fit ``RLIMIT_NOFILE``): at the limit a new
  connection closes the connection that has been idle longest (waiting for a request, or for its
  TLS handshake); when every connection is busy the new one is closed at once;
* deadlines: the TLS handshake, the request head (from accept, or from the first byte of a kept-alive
  connection's next request), a kept-alive idle connection, the writing of a response;
* keep-alive limits (requests per connection) and a listen backlog sized for bursts;
* TLS started per connection with the CURRENT web config (``loop.start_tls``), so TLS, mutual TLS
  and certificates change without a restart, and a slow handshake holds only its own connection;
* 414 / 431 / 400 answers to bad request heads carrying the configured headers;
* an accept loop that, when descriptors run out, closes idle connections, logs one line and pauses
  for a second (asyncio's own would log and retry thousands of times a second, see ``_accept``).

Request handling itself (routes, basic auth, the endpoints) is :mod:`exporter.webapp`.
"""

from __future__ import annotations

import asyncio
import collections
import errno
import logging
import resource
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Protocol

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, LineTooLong
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """What one client, or many, can hold. Defaults suit a Prometheus scrape target."""

    max_connections: int = 512  # also lowered to fit RLIMIT_NOFILE (see effective_max_connections)
    fd_reserve: int = 128  # descriptors kept for ARM connections, files, logs
    backlog: int = 4096  # listen backlog (the kernel caps it at net.core.somaxconn)
    handshake_timeout: float = 10.0  # the whole TLS handshake
    head_timeout: float = 10.0  # the whole request head, from accept or from the first byte of a later request
    idle_timeout: float = 120.0  # a kept-alive connection between requests
    body_timeout: float = 10.0  # a request body that is read (POST /-/reload)
    write_timeout: float = 60.0  # writing one response out
    max_requests_per_connection: int = 1000
    max_request_line: int = 16384  # longer request line: 414 (must differ from max_header_line: it tells them apart)
    max_header_line: int = 8190  # longer header (name and value): 431
    max_headers: int = 100  # more headers: 431
    max_body: int = 64 * 1024  # larger request bodies are not read: the connection is closed after the answer

    def effective_max_connections(self) -> int:
        """``max_connections``, lowered so connections never use the descriptors the rest of the process needs."""
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY:
            return self.max_connections
        return max(1, min(self.max_connections, soft - self.fd_reserve))


def raise_fd_limit() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard limit (as Go programs do at start); return (soft, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft, hard


def parse_listen_address(address: str) -> tuple[str, int]:
    """``:9863``, ``0.0.0.0:9863``, ``[::1]:9863`` -> (host, port); raises ValueError."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"listen address must be [host]:port, got {address!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port_text)


class Application(Protocol):
    """What the server needs from the request-handling side (:class:`exporter.webapp.ExporterApp`)."""

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse: ...

    def ssl_context(self) -> ssl.SSLContext | None: ...

    def response_headers(self) -> dict[str, str]: ...

    def tls_handshake_failed(self, client: str, error: str) -> None: ...

    def connection_closed(self, reason: str) -> None: ...


class _Evictable(Protocol):
    def evict(self, counted: bool = True) -> None: ...


class _Table:
    """Open connections; the idle ones (waiting for a request or a handshake) in the order they became idle."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._idle: collections.OrderedDict[_Evictable, None] = collections.OrderedDict()
        self._busy: set[_Evictable] = set()

    def __len__(self) -> int:
        return len(self._idle) + len(self._busy)

    def admit(self, connection: _Evictable) -> bool:
        """Add a new connection, closing the longest-idle one at the limit; False when all are busy."""
        if len(self) >= self.limit:
            if not self._idle:
                return False
            victim, _ = self._idle.popitem(last=False)
            victim.evict()
        self._idle[connection] = None
        return True

    def idle(self, connection: _Evictable) -> None:
        self._busy.discard(connection)
        self._idle.pop(connection, None)
        self._idle[connection] = None

    def busy(self, connection: _Evictable) -> None:
        self._idle.pop(connection, None)
        self._busy.add(connection)

    def remove(self, connection: _Evictable) -> None:
        self._idle.pop(connection, None)
        self._busy.discard(connection)

    def evict_idle(self, count: int) -> int:
        evicted = 0
        while self._idle and evicted < count:
            victim, _ = self._idle.popitem(last=False)
            victim.evict()
            evicted += 1
        return evicted

    def close_all(self) -> None:
        for connection in [*self._idle, *self._busy]:
            connection.evict(counted=False)
        self._idle.clear()
        self._busy.clear()


_NEW, _IDLE, _HEAD, _BUSY = "new", "idle", "head", "busy"


class _Connection(RequestHandler):
    """aiohttp's HTTP/1.1 protocol, plus the head and write deadlines and the connection table."""

    def __init__(self, manager: _Server, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._owner = manager
        self._phase = _NEW
        self._timer: asyncio.TimerHandle | None = None
        self._bytes_while_busy = False
        self._served = 0
        self._response_seq = 0
        self._evicted = False
        self._refused = False

    # -- lifecycle -------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self._owner.table.admit(self):
            self._refused = True
            self._owner.app.connection_closed("limit")
            transport.abort()  # type: ignore[attr-defined]
            return
        super().connection_made(transport)
        self._arm(self._owner.limits.head_timeout, self._head_timed_out)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._cancel_timer()
        self._owner.table.remove(self)
        if not self._refused:
            super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._phase == _IDLE and data:
            self._phase = _HEAD
            self._owner.table.idle(self)
            self._arm(self._owner.limits.head_timeout, self._head_timed_out)
        elif self._phase == _BUSY and data:
            self._bytes_while_busy = True
        super().data_received(data)

    def evict(self, counted: bool = True) -> None:
        """Closed by the connection limit (``counted``) or at shutdown."""
        if not self._evicted:
            self._evicted = True
            if counted:
                self._owner.app.connection_closed("limit")
            self.force_close()

    # -- called around each request by _Server.dispatch ----------------------------------------------
    def request_started(self) -> int:
        """The head is complete: no head deadline while it is handled. Returns the request's number."""
        self._cancel_timer()
        self._phase = _BUSY
        self._bytes_while_busy = False
        self._owner.table.busy(self)
        self._served += 1
        return self._served

    def request_finished(self) -> None:
        """The response is handed to aiohttp: it must be written out in time; then wait for the next head."""
        self._response_seq += 1
        seq = self._response_seq
        if self._bytes_while_busy:
            self._phase = _HEAD  # part of the next request is already here: its head has a deadline
            self._arm(self._owner.limits.head_timeout, self._head_timed_out)
        else:
            self._phase = _IDLE  # aiohttp's keep-alive timeout (idle_timeout) closes it if nothing comes
            self._cancel_timer()
        self._owner.table.idle(self)
        self._loop.call_later(self._owner.limits.write_timeout, self._check_written, seq)

    # -- deadlines -----------------------------------------------------------------------------------
    def _arm(self, delay: float, callback: Callable[[], None]) -> None:
        self._cancel_timer()
        self._timer = self._loop.call_later(delay, callback)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _head_timed_out(self) -> None:
        self._timer = None
        if self._phase in (_NEW, _HEAD) and self.transport is not None:
            log.debug("request head not received in time: closing the connection",
                      extra={"client": _client(self.transport), "timeout": self._owner.limits.head_timeout})
            self._owner.app.connection_closed("head_timeout")
            self.force_close()

    def _check_written(self, seq: int) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if self._response_seq == seq and self._phase != _BUSY and transport.get_write_buffer_size() > 0:
            log.debug("response not read in time: closing the connection",
                      extra={"client": _client(transport), "timeout": self._owner.limits.write_timeout})
            self._owner.app.connection_closed("write_timeout")
            self.force_close()

    # -- bad request heads ---------------------------------------------------------------------------
    def handle_error(
        self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None, message: str | None = None
    ) -> web.StreamResponse:
        """414 / 431 / 400 for a bad head, 500 for a failing handler; configured headers on every one."""
        if isinstance(exc, LineTooLong):
            limit = exc.args[1] if len(exc.args) > 1 else None
            status = 414 if limit == self._owner.limits.max_request_line else 431
        elif isinstance(exc, BadHttpMessage) and "Too many headers" in str(exc):
            status = 431
        if status >= 500:
            log.error("error handling a request", exc_info=exc, extra={"client": _client(self.transport)})
        else:
            log.debug("bad request", extra={"client": _client(self.transport), "status": status, "err": _describe(exc)})
        if request.writer.output_size > 0:
            raise ConnectionError("response already started")
        response = web.Response(status=status, text=f"{status} {HTTPStatus(status).phrase}\n")
        response.headers.update(self._owner.app.response_headers())
        response.force_close()
        return response


class _Handoff(asyncio.Protocol):
    """Holds what a TLS connection delivers between the end of its handshake and its HTTP protocol."""

    def __init__(self) -> None:
        self._data: list[bytes] = []
        self._eof = False
        self._lost: tuple[BaseException | None] | None = None

    def data_received(self, data: bytes) -> None:
        self._data.append(data)

    def eof_received(self) -> bool:
        self._eof = True
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        self._lost = (exc,)

    def attach(self, connection: _Connection, transport: asyncio.Transport) -> None:
        transport.set_protocol(connection)
        connection.connection_made(transport)
        if self._data:
            connection.data_received(b"".join(self._data))
        if self._eof:
            connection.eof_received()
        if self._lost is not None:
            connection.connection_lost(self._lost[0])


class _TlsAcceptor(asyncio.Protocol):
    """A new connection while TLS is configured: its handshake, with a deadline, then HTTP."""

    def __init__(self, manager: _Server, context: ssl.SSLContext) -> None:
        self._owner = manager
        self._context = context
        self._transport: asyncio.Transport | None = None
        self._task: asyncio.Task[None] | None = None
        self._evicted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.pause_reading()
        self._transport = transport
        if not self._owner.table.admit(self):
            self._owner.app.connection_closed("limit")
            transport.abort()
            return
        self._task = asyncio.get_running_loop().create_task(self._handshake(transport))

    def connection_lost(self, exc: BaseException | None) -> None:
        self._owner.table.remove(self)

    def evict(self, counted: bool = True) -> None:
        if not self._evicted and self._transport is not None:
            self._evicted = True
            if counted:
                self._owner.app.connection_closed("limit")
            self._transport.abort()

    async def _handshake(self, transport: asyncio.Transport) -> None:
        loop = asyncio.get_running_loop()
        client = _client(transport)
        handoff = _Handoff()
        try:
            tls = await loop.start_tls(
                transport, handoff, self._context, server_side=True, ssl_handshake_timeout=self._owner.limits.handshake_timeout
            )
        except (TimeoutError, OSError) as exc:  # ssl.SSLError, the deadline, a reset, an eviction
            self._owner.table.remove(self)
            transport.abort()
            if not self._evicted:
                self._owner.app.tls_handshake_failed(client, _describe(exc))
            return
        self._owner.table.remove(self)
        if tls is None or self._evicted:
            transport.abort()
            return
        handoff.attach(self._owner.new_connection(), tls)


class _Server(web.Server):
    """aiohttp's low-level server, making our connection protocols and keeping the connection table."""

    def __init__(self, app: Application, limits: Limits, **kwargs: Any) -> None:
        self.app = app
        self.limits = limits
        self.table = _Table(limits.effective_max_connections())
        super().__init__(self.dispatch, **kwargs)

    def new_connection(self) -> _Connection:
        return _Connection(
            self,
            loop=self._loop,
            keepalive_timeout=self.limits.idle_timeout,
            access_log=None,
            max_line_size=self.limits.max_request_line,
            max_field_size=self.limits.max_header_line,
            max_headers=self.limits.max_headers,
            lingering_time=0,  # an unread request body closes the connection after the answer
        )

    def __call__(self) -> asyncio.BaseProtocol:  # type: ignore[override]  # protocol factory, once per accepted connection
        try:
            context = self.app.ssl_context()
        except Exception:  # an unusable certificate was loaded: the last good config is still served
            log.exception("cannot build the TLS context")
            context = None
        if context is not None:
            return _TlsAcceptor(self, context)
        return self.new_connection()

    async def dispatch(self, request: web.BaseRequest) -> web.StreamResponse:
        connection = request.protocol
        number = connection.request_started() if isinstance(connection, _Connection) else 0
        try:
            response = await self.app.handle(request)
            if number >= self.limits.max_requests_per_connection:
                response.force_close()
            return response
        finally:
            if isinstance(connection, _Connection):
                connection.request_finished()


class HttpServer:
    """The listening socket (bound at construction) and the event loop thread serving it."""

    def __init__(self, address: tuple[str, int], app: Application, limits: Limits | None = None) -> None:
        self.app = app
        self.limits = limits or Limits()
        host, port = address
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.create_server((host, port), family=family, backlog=self.limits.backlog)
        self._socket.setblocking(False)
        self._address: tuple[str, int] = self._socket.getsockname()[:2]
        self._loop = asyncio.new_event_loop()
        self._loop.set_exception_handler(self._loop_error)
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._server: _Server | None = None
        self._accepting = False

    @property
    def address(self) -> tuple[str, int]:
        return self._address

    @property
    def max_connections(self) -> int:
        return self.limits.effective_max_connections()

    def open_connections(self) -> int:
        return len(self._server.table) if self._server is not None else 0

    def start(self) -> None:
        """Serve in a daemon thread ("http"); returns once connections are being accepted."""
        self._thread = threading.Thread(target=self._run, name="http", daemon=True)
        self._thread.start()
        self._started.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._listen())
        self._started.set()
        self._loop.run_forever()

    async def _listen(self) -> None:
        self._server = _Server(self.app, self.limits)
        self._resume_accepting()

    # -- accepting -----------------------------------------------------------------------------------
    # Our own accept loop rather than loop.create_server: CPython 3.11's keeps calling accept() after
    # EMFILE up to `backlog` times per wake-up, logging and scheduling a retry each time (thousands of
    # lines a second with a burst-sized backlog). Here accept() stops at the first EMFILE, idle
    # connections are closed to make room, one line is logged, and accepting resumes a second later.
    ACCEPTS_PER_WAKEUP = 64
    ACCEPT_PAUSE = 1.0

    def _resume_accepting(self) -> None:
        if not self._accepting and self._socket.fileno() >= 0:
            self._loop.add_reader(self._socket.fileno(), self._accept)
            self._accepting = True

    def _pause_accepting(self) -> None:
        if self._accepting:
            self._loop.remove_reader(self._socket.fileno())
            self._accepting = False

    def _accept(self) -> None:
        assert self._server is not None
        for _ in range(self.ACCEPTS_PER_WAKEUP):
            try:
                connection, _ = self._socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self._out_of_descriptors(exc)
                else:
                    log.error("accept failed", extra={"err": _describe(exc)})
                return
            connection.setblocking(False)
            self._loop.create_task(self._connect(connection))

    async def _connect(self, connection: socket.socket) -> None:
        assert self._server is not None
        try:
            await self._loop.connect_accepted_socket(self._server, connection)
        except OSError as exc:  # reset before its transport was made
            connection.close()
            log.debug("connection error", extra={"err": _describe(exc)})

    def _out_of_descriptors(self, exc: OSError) -> None:
        assert self._server is not None
        open_connections = len(self._server.table)
        freed = self._server.table.evict_idle(max(16, open_connections // 4))
        log.error(
            "out of file descriptors: closed idle connections, not accepting new ones for 1s",
            extra={"err": _describe(exc), "open_connections": open_connections, "closed_idle": freed},
        )
        self._pause_accepting()
        self._loop.call_later(self.ACCEPT_PAUSE, self._resume_accepting)

    # -- stopping ------------------------------------------------------------------------------------
    def stop(self, timeout: float = 2.0) -> None:
        """Stop accepting, close every connection, stop the loop (does not wait for idle keep-alive clients)."""
        if self._thread is None:
            self._socket.close()
            return
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._shutdown)
        self._thread.join(timeout)
        if not self._thread.is_alive() and not self._loop.is_closed():
            self._loop.close()

    def _shutdown(self) -> None:
        self._pause_accepting()
        self._socket.close()
        if self._server is not None:
            self._server.table.close_all()
        self._loop.call_later(0.05, self._loop.stop)

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """asyncio's own error reports: a client's connection error at debug, anything else at error."""
        exc = context.get("exception")
        if isinstance(exc, (ConnectionError, ssl.SSLError)):
            log.debug("connection error", extra={"err": _describe(exc)})
            return
        log.error("event loop error: %s", context.get("message"), exc_info=exc)


def _client(transport: asyncio.BaseTransport | None) -> str:
    if transport is None:
        return ""
    peer = transport.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) and peer else ""


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return ""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
