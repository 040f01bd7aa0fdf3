"""Command line: Prometheus-style flags, logging, wiring and signals."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector

from . import __version__, logs
from .arm import ArmClient, TokenCredential
from .armstats import ArmStats
from .collector import Publisher
from .config import ConfigError, Settings, load_file
from .poller import Poller
from .server import ExporterApp, ExporterHTTPServer, parse_listen_address, serve

log = logging.getLogger("exporter.cli")

EXIT_CONFIG = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="standby-pool-exporter",
        description="Prometheus exporter for Azure standby pools.",
    )
    parser.add_argument("--config.file", dest="config_file", default="config.yaml", help="YAML configuration file (default: %(default)s)")
    parser.add_argument("--web.listen-address", dest="listen_address", default=":9863", help="address to listen on (default: %(default)s)")
    parser.add_argument("--web.telemetry-path", dest="telemetry_path", default="/metrics", help="path for metrics (default: %(default)s)")
    parser.add_argument("--log.level", dest="log_level", default="info", choices=list(logs.LEVELS), help="minimum log level (default: %(default)s)")
    parser.add_argument("--log.format", dest="log_format", default="logfmt", choices=["logfmt", "json"], help="log format (default: %(default)s)")
    parser.add_argument("--check-config", dest="check_config", action="store_true", help="validate the configuration, print what is wrong, exit 0 or 2")
    parser.add_argument("--demo", action="store_true", help="run against the built-in ARM simulator: no Azure account needed")
    parser.add_argument("--version", action="version", version=f"standby-pool-exporter {__version__}")
    return parser


@dataclass
class _Resources:
    """Things to close on shutdown, in reverse order of creation."""

    closers: list = field(default_factory=list)

    def close(self) -> None:
        for close in reversed(self.closers):
            try:
                close()
            except Exception:  # shutdown must go on
                log.exception("error during shutdown")


def _settings_and_credential(args: argparse.Namespace, resources: _Resources) -> tuple[Settings, TokenCredential]:
    if args.demo:
        from .demo import start_demo

        demo = start_demo()
        resources.closers.append(demo.stop)
        return demo.settings, demo.credential
    settings = load_file(args.config_file)
    from azure.identity import DefaultAzureCredential

    return settings, DefaultAzureCredential(authority=settings.azure.authority_host)


def main(argv: Sequence[str] | None = None, stop: threading.Event | None = None) -> int:
    """Run the exporter until SIGTERM/SIGINT (or ``stop`` is set); return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.telemetry_path.startswith("/") or args.telemetry_path in ("/", "/healthz", "/readyz"):
        parser.error(f"--web.telemetry-path must start with / and not clash with /, /healthz or /readyz, got {args.telemetry_path!r}")
    try:
        address = parse_listen_address(args.listen_address)
    except ValueError as exc:
        parser.error(f"--web.listen-address: {exc}")
    logs.configure(args.log_level, args.log_format)
    resources = _Resources()
    try:
        return _run(args, address, resources, stop or threading.Event())
    finally:
        resources.close()


def _run(args: argparse.Namespace, address: tuple[str, int], resources: _Resources, stop: threading.Event) -> int:
    try:
        settings, credential = _settings_and_credential(args, resources)
    except ConfigError as exc:
        print(f"standby-pool-exporter: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.check_config:
        print(f"configuration OK: {len(settings.pools)} pool(s)")
        return 0

    stats = ArmStats()
    client = ArmClient(
        settings.azure.resource_manager_endpoint,
        credential,
        settings.azure.token_scope,
        timeout=settings.polling.timeout,
        observer=stats,
        pool_size=max(16, settings.polling.concurrency * 2),
    )
    resources.closers.append(client.close)
    poller = Poller(settings, client, stats)
    publisher = Publisher(poller.snapshot)
    poller.on_publish = publisher.publish

    live_registry = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=live_registry)
    PlatformCollector(registry=live_registry)
    try:
        server = ExporterHTTPServer(address, ExporterApp(publisher, live_registry, args.telemetry_path))
    except OSError as exc:
        log.error("cannot listen", extra={"address": args.listen_address, "err": str(exc)})
        return 1
    resources.closers.append(server.server_close)
    serve(server)
    resources.closers.append(server.shutdown)
    host, port = server.server_address[:2]
    log.info(
        "exporter started",
        extra={"version": __version__, "address": f"{host or '*'}:{port}", "pools": len(settings.pools), "endpoint": settings.azure.resource_manager_endpoint},
    )
    poller.start()
    resources.closers.append(poller.stop)

    _install_signal_handlers(stop)
    stop.wait()
    log.info("shutting down")
    return 0


def _install_signal_handlers(stop: threading.Event) -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())


def run() -> None:
    """Console-script entry point: exit at once after a clean shutdown, abandoning in-flight ARM reads."""
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
