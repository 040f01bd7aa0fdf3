"""The exporter's HTTP layer alone, in a child process (for tests that set its resource limits).

Usage: ``python -m tests.support.http_child MAX_CONNECTIONS FD_RESERVE``; prints the port, serves an
empty snapshot until its standard input is closed. Logs (logfmt, debug) go to stderr.
"""

from __future__ import annotations

import sys

from prometheus_client import CollectorRegistry

from exporter import logs
from exporter.armstats import ArmStatsSnapshot
from exporter.exposition import Publisher
from exporter.snapshot import Snapshot
from exporter.server import HttpServer, Limits
from exporter.webapp import ExporterApp


def main() -> None:
    limits = Limits(max_connections=int(sys.argv[1]), fd_reserve=int(sys.argv[2]))
    logs.configure("info", "logfmt")
    app = ExporterApp(Publisher(Snapshot(pools=(), arm=ArmStatsSnapshot(), interval=30)), CollectorRegistry(auto_describe=False), limits=limits)
    server = HttpServer(("127.0.0.1", 0), app, limits)
    server.start()
    print(server.address[1], flush=True)
    sys.stdin.read()
    server.stop()


if __name__ == "__main__":
    main()
