"""Command line: Prometheus-style flags, logging, wiring and signals."""

from __future__ import annotations

import argparse
import functools
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from prometheus_client import CollectorRegistry, Gauge, PlatformCollector, ProcessCollector

from . import __version__, credentials, logs, preflight
from .arm import ArmClient, ReadBudget, TokenCredential
from .armstats import ArmStats
from .exposition import Publisher
from .config import ConfigError, Settings, load_file, shard_count, shard_index
from .poller import Poller
from .server import ExporterApp, ExporterHTTPServer, ReloadNotSupported, parse_listen_address, serve
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
    parser.add_argument("--check-config", dest="check_config", action="store_true", help="validate the configuration, print what is wrong, exit 0 or 2")
    parser.add_argument(
        "--check-access", dest="check_access", action="store_true",
        help="validate the configuration (as --check-config), then get a token and make one read per configured subscription and pool kind; "
             "print OK or the missing role action per subscription, exit 0 or 2",
    )
    parser.add_argument("--demo", action="store_true", help="run against the built-in ARM simulator: no Azure account needed")
    parser.add_argument("--version", action="version", version=f"standby-pool-exporter {__version__}")
    return parser


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


def apply_flags(settings: Settings, args: argparse.Namespace) -> Settings:
    """``--shard.index`` / ``--shard.count`` override the configuration's ``sharding:`` section.

    Raises ConfigError when the result has an index outside 0 .. count-1.
    """
    overrides = {key: value for key, value in (("index", args.shard_index), ("count", args.shard_count)) if value is not None}
    if not overrides:
        return settings
    sharding = replace(settings.sharding, **overrides)
    if sharding.index >= sharding.count:
        index_from = "--shard.index" if "index" in overrides else "sharding.index"
        count_from = "--shard.count" if "count" in overrides else "sharding.count"
        raise ConfigError([f"{index_from}: must be below {count_from} ({sharding.count}), got {sharding.index}"])
    return replace(settings, sharding=sharding)


class Reloader:
    """Configuration reload (SIGHUP, ``POST /-/reload``): re-read the file, apply it, or keep the running one.

    Publishes ``azure_standby_pool_config_last_reload_successful`` and
    ``azure_standby_pool_config_last_reload_success_timestamp_seconds`` in ``registry``. One reload at a
    time. ``config_file=None`` (``--demo``) means reload is not supported.
    """

    def __init__(
        self,
        config_file: str | None,
        args: argparse.Namespace,
        running: Settings,
        apply: Callable[[Settings], None],
        registry: CollectorRegistry,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config_file = config_file
        self._args = args
        self._running = running
        self._apply = apply
        self._clock = clock
        self._lock = threading.Lock()
        self._successful = Gauge(
            "azure_standby_pool_config_last_reload_successful",
            "1 when the last configuration reload (or the initial load) succeeded, 0 when it failed.",
            registry=registry,
        )
        self._success_time = Gauge(
            "azure_standby_pool_config_last_reload_success_timestamp_seconds",
            "When the configuration was last loaded successfully.",
            registry=registry,
        )
        self._successful.set(1)
        self._success_time.set(clock())

    @property
    def supported(self) -> bool:
        return self._config_file is not None

    @property
    def running(self) -> Settings:
        return self._running

    def reload(self) -> list[str]:
        """Reload; return the problems (empty on success). Raises ReloadNotSupported in ``--demo`` mode."""
        if self._config_file is None:
            raise ReloadNotSupported("configuration reload is not supported in --demo mode")
        with self._lock:
            log.info("reloading configuration", extra={"file": self._config_file})
            try:
                settings = apply_flags(load_file(self._config_file), self._args)
                _check_restart_only(self._running, settings)
            except ConfigError as exc:
                return self._failed(exc.problems)
            try:
                self._apply(settings)
            except Exception as exc:  # the poller refused it: keep reporting the failure, keep serving
                log.exception("cannot apply the reloaded configuration")
                return self._failed([f"cannot apply the configuration: {type(exc).__name__}: {exc}"])
            if settings.polling.timeout != self._running.polling.timeout:
                log.warning(
                    "polling.timeout changed: the HTTP client keeps its start value until a restart",
                    extra={"running": self._running.polling.timeout, "configured": settings.polling.timeout},
                )
            self._running = settings
            self._successful.set(1)
            self._success_time.set(self._clock())
            log.info(
                "configuration reloaded",
                extra={"file": self._config_file, "pools": len(settings.pools), "discovery": settings.discovery is not None,
                       "shard": f"{settings.sharding.index}/{settings.sharding.count}"},
            )
            return []

    def _failed(self, problems: list[str]) -> list[str]:
        self._successful.set(0)
        log.error("configuration reload failed: keeping the running configuration", extra={"file": self._config_file, "problems": len(problems)})
        for problem in problems:
            log.error("invalid configuration", extra={"file": self._config_file, "problem": problem})
        return problems

    def on_signal(self) -> None:
        """SIGHUP: reload in its own thread (not in the signal handler), logging the outcome."""
        if not self.supported:
            log.warning("SIGHUP ignored: configuration reload is not supported in --demo mode")
            return
        threading.Thread(target=self.reload, name="reload", daemon=True).start()


def _check_restart_only(running: Settings, new: Settings) -> None:
    """The ARM origin, token scope and login authority are bound at start: changing them needs a restart."""
    problems = [
        f"azure.{key}: cannot change on reload ({getattr(running.azure, key)!r} -> {getattr(new.azure, key)!r}); restart the exporter"
        for key in ("cloud", "resource_manager_endpoint")
        if getattr(running.azure, key) != getattr(new.azure, key)
    ]
    if problems:
        raise ConfigError(problems)


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
    if args.shard_index is not None and args.shard_count is not None and args.shard_index >= args.shard_count:
        parser.error(f"--shard.index must be below --shard.count ({args.shard_count}), got {args.shard_index}")
    logs.configure(args.log_level, args.log_format)
    credentials.quiet_credential_noise(args.log_level)
    resources = _Resources()
    try:
        return _run(parser, args, address, resources, stop or threading.Event())
    finally:
        resources.close()


def _web_config_source(watcher: WebConfigWatcher, path: str) -> Callable[[], WebConfig]:
    """``watcher.current``, logging each successful reload once."""
    lock = threading.Lock()
    seen = [watcher.reloads_total]

    def current() -> WebConfig:
        config = watcher.current()
        with lock:
            changed, seen[0] = watcher.reloads_total != seen[0], watcher.reloads_total
        if changed:
            log.info("web configuration reloaded", extra={"file": path, "tls": config.tls is not None, "users": len(config.basic_auth_users)})
        return config

    return current


def _log_web_config_error(path: str) -> Callable[[WebConfigError], None]:
    def on_error(exc: WebConfigError) -> None:
        log.error("web configuration reload failed: keeping the running web configuration", extra={"file": path, "problems": len(exc.problems)})
        for problem in exc.problems:
            log.error("invalid web configuration", extra={"file": path, "problem": problem})

    return on_error


def _run(
    parser: argparse.ArgumentParser, args: argparse.Namespace, address: tuple[str, int], resources: _Resources, stop: threading.Event
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
            watcher = WebConfigWatcher(args.web_config_file, on_error=_log_web_config_error(args.web_config_file))
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
    app = ExporterApp(
        publisher, live_registry, args.telemetry_path,
        web_config=_web_config_source(watcher, args.web_config_file) if watcher is not None else None,
        reload=reloader.reload,
        enable_lifecycle=args.enable_lifecycle,
    )
    try:
        server = ExporterHTTPServer(address, app)
    except OSError as exc:
        log.error("cannot listen", extra={"address": args.listen_address, "err": str(exc)})
        return 1
    resources.closers.append(server.server_close)
    serve(server)
    resources.closers.append(server.shutdown)
    _install_signal_handlers(stop, reloader.on_signal)
    host, port = server.server_address[:2]
    web = app.web_config()
    log.info(
        "exporter started",
        extra={
            "version": __version__, "address": f"{host or '*'}:{port}", "configured_pools": len(settings.pools),
            "discovery": settings.discovery is not None, "shard": f"{settings.sharding.index}/{settings.sharding.count}",
            "endpoint": settings.azure.resource_manager_endpoint, "tls": web.tls is not None,
            "basic_auth": bool(web.basic_auth_users), "lifecycle": args.enable_lifecycle,
        },
    )
    poller.start()
    resources.closers.append(poller.stop)

    stop.wait()
    log.info("shutting down")
    return 0


def _apply(budget: ReadBudget, poller: Poller, settings: Settings) -> None:
    """A reloaded configuration: the read budget at once, the rest from the next cycle."""
    budget.update(settings.azure.max_reads_per_second, settings.azure.max_read_burst)
    poller.reconfigure(settings)


def _install_signal_handlers(stop: threading.Event, reload: Callable[[], None]) -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, lambda *_: reload())


def run() -> None:
    """Console-script entry point: exit at once after a clean shutdown, abandoning in-flight ARM reads."""
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
