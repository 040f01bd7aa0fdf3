"""A loopback HTTP server that answers from a script of canned replies and records every request."""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


@dataclass
class Reply:
    status: int = 200
    body: bytes | dict | list = b"{}"
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> bytes:
        return self.body if isinstance(self.body, bytes) else json.dumps(self.body).encode()


@dataclass(frozen=True)
class Seen:
    path: str  # with query
    headers: dict[str, str]


class ScriptedServer:
    """``server.script("/path", Reply(...), ...)``: replies are served in order, the last one repeats."""

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self._script: dict[str, deque[Reply]] = {}
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                with outer._lock:
                    outer.requests.append(Seen(self.path, {k.lower(): v for k, v in self.headers.items()}))
                    queue = outer._script.get(self.path.split("?", 1)[0])
                    unscripted = Reply(404, {"error": {"code": "NotScripted", "message": self.path}})
                    reply = (queue.popleft() if len(queue) > 1 else queue[0]) if queue else unscripted
                body = reply.encoded()
                self.send_response(reply.status)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Content-Type", "application/json")
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                return None

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def script(self, path: str, *replies: Reply) -> None:
        with self._lock:
            self._script[path] = deque(replies)

    def paths(self) -> list[str]:
        return [seen.path.split("?", 1)[0] for seen in self.requests]

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
