"""Command line: Prometheus-style flags, logging, wiring and signals."""

from __future__ import annotations

import argparse
import functools
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector

from . import __version__, credentials, logs, preflight
from .arm import ArmClient, ReadBudget, TokenCredential
from .armstats import ArmStats
from .basicauth import Authenticator
from .config import ConfigError, Settings, load_file, shard_count, shard_index
from .exposition import Publisher
from .poller import Poller
from .reload import Reloader, apply_flags
from .server import HttpServer, Limits, parse_listen_address, raise_fd_limit
from .webapp import ExporterApp
from .webconfig import WebConfig, WebConfigError, WebConfigWatcher

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
    parser.add_argument(
        "--web.config.file", dest="web_config_file", default=None,
        help="web configuration (exporter-toolkit format) for TLS, client certificates, basic auth and headers; re-read when it changes",
    )
    parser.add_argument(
        "--web.max-connections", dest="max_connections", type=_positive_int, default=Limits.max_connections,
        help="most HTTP connections held open at once; at the limit the longest-idle one is closed (default: %(default)s)",
    )
    parser.add_argument(
        "--web.enable-lifecycle", dest="enable_lifecycle", action="store_true",
        help="enable POST /-/reload (reload the configuration file, as SIGHUP does)",
    )
    parser.add_argument(
        "--shard.index", dest="shard_index", type=_integer_flag(shard_index), default=None,
        help="poll only the pools of this shard, 0 .. shard.count-1 (default: sharding.index of the configuration)",
    )
    parser.add_argument(
        "--shard.count", dest="shard_count", type=_integer_flag(shard_count), default=None,
        help="number of exporter replicas sharing the pools (default: sharding.count of the configuration)",
    )
    parser.add_argument("--log.level", dest="log_level", default="info", choices=list(logs.LEVELS), help="minimum log level (default: %(default)s)")
    parser.add_argument("--log.format", dest="log_format", default="logfmt", choices=["logfmt", "json"], help="log format (default: %(default)s)")
    parser.add_argument("--check-config", dest="check_config", action="store_true",
                        help="validate the configuration, print what is wrong, exit 0 or 2")
    parser.add_argument(
        "--check-access", dest="check_access", action="store_true",
        help="validate the configuration (as --check-config), then get a token and make one read per configured subscription and pool kind; "
             "print OK or the missing role action per subscription, exit 0 or 2",
    )
    parser.add_argument("--demo", action="store_true", help="run against the built-in ARM simulator: no Azure account needed")
    parser.add_argument("--version", action="version", version=f"standby-pool-exporter {__version__}")
    return parser


def _positive_int(text: str) -> int:
    try:
        number = int(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if not 1 <= number <= 1_000_000:
        raise argparse.ArgumentTypeError(f"must be between 1 and 1000000, got {number}")
    return number


def _integer_flag(convert: Callable[[object], int]) -> Callable[[str], int]:
    """A flag type checked by the same converter as the configuration key it overrides."""

    def parse(text: str) -> int:
        try:
            number = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        try:
            return convert(number)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


@dataclass
class _Resources:
    """Things to close on shutdown, in reverse order of creation."""

    closers: list[Callable[[], None]] = field(default_factory=list)

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
    if args.shard_index is not None and args.shard_count is not None and args.shard_index >= args.shard_count:
        parser.error(f"--shard.index must be below --shard.count ({args.shard_count}), got {args.shard_index}")
    logs.configure(args.log_level, args.log_format)
    signals = _Signals(stop or threading.Event())
    signals.install()  # before anything else: a signal during start-up must not take its default action
    credentials.quiet_credential_noise(args.log_level)
    resources = _Resources()
    try:
        return _run(parser, args, address, resources, signals)
    finally:
        resources.close()
        signals.restore()


class _Signals:
    """SIGTERM/SIGINT stop the exporter, SIGHUP reloads; installed first, so no signal during start-up kills it.

    The handlers only set attributes (a handler runs between two bytecodes of the main thread, which may
    hold any lock at that moment). The main thread's loop in :meth:`serve` acts on them; a SIGHUP that
    arrived during start-up is acted on as soon as that loop runs.
    """

    POLL = 0.2  # also bounds the delay when the kernel delivers a signal to another thread

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self._stop_requested = False
        self._hangups = 0
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        handlers = {signal.SIGTERM: self._on_stop, signal.SIGINT: self._on_stop}
        if hasattr(signal, "SIGHUP"):
            handlers[signal.SIGHUP] = self._on_hangup
        for signum, handler in handlers.items():
            self._previous[signum] = signal.signal(signum, handler)

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def serve(self, on_hangup: Callable[[], None]) -> None:
        """Wait for SIGTERM/SIGINT (or ``stop``), calling ``on_hangup`` once per burst of SIGHUPs."""
        handled = 0
        while not self._stop_requested:
            if self._hangups != handled:
                handled = self._hangups
                on_hangup()
            if self.stop.wait(self.POLL):
                return

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        self._stop_requested = True

    def _on_hangup(self, signum: int, frame: FrameType | None) -> None:
        self._hangups += 1


def _web_config_watcher(path: str) -> WebConfigWatcher:
    """The watcher of ``--web.config.file``, logging each reload and each rejected change."""

    def on_reload(config: WebConfig) -> None:
        log.info("web configuration reloaded", extra={"file": path, "tls": config.tls is not None, "users": len(config.basic_auth_users)})

    def on_error(exc: WebConfigError) -> None:
        log.error("web configuration reload failed: keeping the running web configuration", extra={"file": path, "problems": len(exc.problems)})
        for problem in exc.problems:
            log.error("invalid web configuration", extra={"file": path, "problem": problem})

    return WebConfigWatcher(path, on_error=on_error, on_reload=on_reload)


def _run(
    parser: argparse.ArgumentParser, args: argparse.Namespace, address: tuple[str, int], resources: _Resources, signals: _Signals
) -> int:
    errors: list[Exception] = []
    settings: Settings | None = None
    try:
        settings, credential = _settings_and_credential(args, resources)
    except ConfigError as exc:
        errors.append(exc)
    watcher: WebConfigWatcher | None = None
    if args.web_config_file:
        try:
            watcher = _web_config_watcher(args.web_config_file)
        except WebConfigError as exc:
            errors.append(exc)
    if errors or settings is None:
        for error in errors:
            print(f"standby-pool-exporter: {error}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        settings = apply_flags(settings, args)
    except ConfigError as exc:
        parser.error(exc.problems[0])
    if args.check_config or args.check_access:
        print(f"configuration OK: {len(settings.pools)} pool(s)")
        if watcher is not None:
            print("web configuration OK")
        return preflight.check_access(settings, credential) if args.check_access else 0

    fd_limit, _ = raise_fd_limit()
    stats = ArmStats()
    budget = ReadBudget(settings.azure.max_reads_per_second, settings.azure.max_read_burst)
    client = ArmClient(
        settings.azure.resource_manager_endpoint,
        credential,
        settings.azure.token_scope,
        timeout=settings.polling.timeout,
        observer=stats,
        budget=budget,
        pool_size=max(16, settings.polling.concurrency * 2),
    )
    resources.closers.append(client.close)
    poller = Poller(settings, client, stats)
    publisher = Publisher(poller.snapshot)
    poller.on_publish = publisher.publish

    live_registry = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=live_registry)
    PlatformCollector(registry=live_registry)
    reloader = Reloader(None if args.demo else args.config_file, args, settings, functools.partial(_apply, budget, poller), live_registry)
    limits = Limits(max_connections=args.max_connections)
    authenticator = Authenticator()
    resources.closers.append(authenticator.close)
    app = ExporterApp(
        publisher, live_registry, args.telemetry_path,
        web_config=watcher.current if watcher is not None else None,
        reload=reloader.submit,
        enable_lifecycle=args.enable_lifecycle,
        authenticator=authenticator,
        limits=limits,
    )
    try:
        server = HttpServer(address, app, limits)
    except OSError as exc:
        log.error("cannot listen", extra={"address": args.listen_address, "err": str(exc)})
        return 1
    server.start()
    resources.closers.append(server.stop)
    if watcher is not None:
        watcher.start()
        resources.closers.append(watcher.stop)

    def on_sighup() -> None:
        reloader.on_signal()
        if watcher is not None:
            watcher.request_reload()

    host, port = server.address
    web = app.web_config()
    log.info(
        "exporter started",
        extra={
            "version": __version__, "address": f"{host or '*'}:{port}", "configured_pools": len(settings.pools),
            "discovery": settings.discovery is not None, "shard": f"{settings.sharding.index}/{settings.sharding.count}",
            "endpoint": settings.azure.resource_manager_endpoint, "tls": web.tls is not None,
            "basic_auth": bool(web.basic_auth_users), "lifecycle": args.enable_lifecycle,
            "max_connections": server.max_connections, "fd_limit": fd_limit,
        },
    )
    poller.start()
    resources.closers.append(poller.stop)

    signals.serve(on_sighup)
    log.info("shutting down")
    return 0


def _apply(budget: ReadBudget, poller: Poller, settings: Settings) -> None:
    """A reloaded configuration: the read budget at once, the rest from the next cycle."""
    budget.update(settings.azure.max_reads_per_second, settings.azure.max_read_burst)
    poller.reconfigure(settings)


def run() -> None:
    """Console-script entry point: exit at once after a clean shutdown, abandoning in-flight ARM reads."""
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
