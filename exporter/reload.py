"""Configuration reload (SIGHUP, ``POST /-/reload``): re-read the file off the request path, with a deadline.

A reload runs on its own thread. Requests for a reload while one is waiting to start share it (a
SIGHUP storm costs one or two reads, not one per signal). A reload that has not finished within
``timeout`` (a file on a hung network mount) is reported as failed, sets
``config_last_reload_successful`` to 0, and is abandoned: if it ever finishes, it applies nothing.
The running configuration is kept on every failure.
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import replace

from prometheus_client import CollectorRegistry, Gauge

from .collector import BY_NAME
from .config import ConfigError, Settings, load_file
from .webapp import ReloadNotSupported

log = logging.getLogger("exporter.reload")

RELOAD_TIMEOUT = 30.0


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
    """Re-read the configuration file, apply it, or keep the running one.

    Publishes ``azure_standby_pool_config_last_reload_successful`` and
    ``azure_standby_pool_config_last_reload_success_timestamp_seconds`` in ``registry``.
    ``config_file=None`` (``--demo``) means reload is not supported.
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
        timeout: float = RELOAD_TIMEOUT,
        load: Callable[[str], Settings] = load_file,
    ) -> None:
        self._config_file = config_file
        self._args = args
        self._running = running
        self._apply = apply
        self._clock = clock
        self._timeout = timeout
        self._load = load
        self._lock = threading.Lock()  # guards the attempt number and the applying of a result
        self._queue_lock = threading.Lock()  # guards the two below; held only briefly (SIGHUP handler)
        self._queued: Future[list[str]] | None = None  # requested, not started yet: later requests share it
        self._worker: threading.Thread | None = None
        self._attempt = 0
        successful, success_time = BY_NAME["config_last_reload_successful"], BY_NAME["config_last_reload_success_timestamp_seconds"]
        self._successful = Gauge(
            successful.full_name, successful.help,
            registry=registry,
        )
        self._success_time = Gauge(
            success_time.full_name, success_time.help,
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

    def submit(self) -> Future[list[str]]:
        """Start a reload (or join the one waiting to start); its future gives the problems (empty: success).

        Raises ReloadNotSupported in ``--demo`` mode. The future is done within about ``timeout``.
        """
        if self._config_file is None:
            raise ReloadNotSupported("configuration reload is not supported in --demo mode")
        with self._queue_lock:
            if self._queued is not None:
                return self._queued
            future: Future[list[str]] = Future()
            self._queued = future
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="reload", daemon=True)
                self._worker.start()
            return future

    def reload(self) -> list[str]:
        """Reload and wait for the outcome; return the problems (empty on success)."""
        return self.submit().result()

    def on_signal(self) -> None:
        """SIGHUP: reload on the reload thread (not in the signal handler); the outcome is logged."""
        if not self.supported:
            log.warning("SIGHUP ignored: configuration reload is not supported in --demo mode")
            return
        self.submit()

    def _work(self) -> None:
        while True:
            with self._queue_lock:
                future, self._queued = self._queued, None
                if future is None:
                    self._worker = None
                    return
            future.set_result(self._one_reload())

    def _one_reload(self) -> list[str]:
        """Run one reload on a thread of its own and wait for it at most ``timeout``."""
        with self._lock:
            self._attempt += 1
            attempt = self._attempt
        outcome: list[list[str]] = []
        thread = threading.Thread(target=lambda: outcome.append(self._reload(attempt)), name="reload-attempt", daemon=True)
        thread.start()
        thread.join(self._timeout)
        with self._lock:
            if outcome:
                return outcome[0]
            self._attempt += 1  # the stuck attempt will apply nothing if it ever finishes
        return self._failed([f"{self._config_file}: reload did not finish within {self._timeout:g}s"])

    def _reload(self, attempt: int) -> list[str]:
        assert self._config_file is not None
        log.info("reloading configuration", extra={"file": self._config_file})
        try:
            settings = apply_flags(self._load(self._config_file), self._args)
            _check_restart_only(self._running, settings)
        except ConfigError as exc:
            return self._failed(exc.problems, attempt)
        with self._lock:
            if attempt != self._attempt:
                return []  # abandoned: the timeout was already reported
            try:
                self._apply(settings)
            except Exception as exc:  # the poller refused it: keep reporting the failure, keep serving
                log.exception("cannot apply the reloaded configuration")
                return self._failed_locked([f"cannot apply the configuration: {type(exc).__name__}: {exc}"])
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

    def _failed(self, problems: list[str], attempt: int | None = None) -> list[str]:
        with self._lock:
            if attempt is not None and attempt != self._attempt:
                return problems  # abandoned: the timeout was already reported
            return self._failed_locked(problems)

    def _failed_locked(self, problems: list[str]) -> list[str]:
        self._successful.set(0)
        log.error("configuration reload failed: keeping the running configuration", extra={"file": self._config_file, "problems": len(problems)})
        for problem in problems:
            log.error("invalid configuration", extra={"file": self._config_file, "problem": problem})
        return problems


def _check_restart_only(running: Settings, new: Settings) -> None:
    """The ARM origin, token scope and login authority are bound at start: changing them needs a restart."""
    problems = [
        f"azure.{key}: cannot change on reload ({getattr(running.azure, key)!r} -> {getattr(new.azure, key)!r}); restart the exporter"
        for key in ("cloud", "resource_manager_endpoint")
        if getattr(running.azure, key) != getattr(new.azure, key)
    ]
    if problems:
        raise ConfigError(problems)
