"""exporter.cli: flags (sharding, web config, lifecycle), start-up validation, and configuration reload."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from exporter.cli import Reloader, apply_flags, build_parser, main
from exporter.config import ConfigError, Settings, ShardingSettings, load_file
from exporter.webapp import ReloadNotSupported
from tests.support.fakes import SUB, FakeClock

OK = "azure_standby_pool_config_last_reload_successful"
OK_TIME = "azure_standby_pool_config_last_reload_success_timestamp_seconds"


def config(*pools: str, **sections: object) -> dict:
    return {
        "azure": {"resource_manager_endpoint": "http://127.0.0.1:1"},
        "pools": [{"subscription_id": SUB, "resource_group": "rg", "name": name} for name in pools],
        **sections,
    }


def write(path: Path, data: dict | str) -> Path:
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """main() configures logging for the process: put the test process's logging back afterwards."""
    names = ("", "exporter", "azure", "urllib3", "apscheduler")
    saved = {name: (logging.getLogger(name).level, list(logging.getLogger(name).handlers)) for name in names}
    yield
    for name, (level, handlers) in saved.items():
        logging.getLogger(name).setLevel(level)
        logging.getLogger(name).handlers[:] = handlers


def args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


# --- flags ---------------------------------------------------------------------------------------


def test_new_flags_and_defaults() -> None:
    parsed = args()
    assert (parsed.web_config_file, parsed.enable_lifecycle, parsed.shard_index, parsed.shard_count) == (None, False, None, None)
    parsed = args("--web.config.file=web.yml", "--web.enable-lifecycle", "--shard.index=1", "--shard.count=3")
    assert (parsed.web_config_file, parsed.enable_lifecycle, parsed.shard_index, parsed.shard_count) == ("web.yml", True, 1, 3)


def test_max_connections_flag() -> None:
    assert args().max_connections == 512
    assert args("--web.max-connections=64").max_connections == 64


@pytest.mark.parametrize("argv", [["--web.max-connections=0"], ["--web.max-connections=lots"]])
def test_bad_max_connections_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(argv)
    assert exit_info.value.code == 2 and "--web.max-connections" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv", [["--shard.index=-1"], ["--shard.index=x"], ["--shard.count=0"], ["--shard.count=1.5"], ["--shard.count=10001"]]
)
def test_bad_shard_flag_values_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(argv)
    assert exit_info.value.code == 2 and "--shard." in capsys.readouterr().err


def test_shard_index_must_be_below_shard_count(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--shard.index=2", "--shard.count=2"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "usage:" in err and "--shard.index must be below --shard.count (2), got 2" in err


def test_shard_flag_against_the_configured_count_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = write(tmp_path / "c.yaml", config("pool-a", sharding={"index": 0, "count": 2}))
    with pytest.raises(SystemExit) as exit_info:
        main([f"--config.file={file}", "--check-config", "--shard.index=2"])
    assert exit_info.value.code == 2
    assert "--shard.index: must be below sharding.count (2), got 2" in capsys.readouterr().err


def test_apply_flags_overrides_the_sharding_section(tmp_path: Path) -> None:
    settings = load_file(write(tmp_path / "c.yaml", config("pool-a", sharding={"index": 1, "count": 4})))
    assert apply_flags(settings, args()) is settings
    assert apply_flags(settings, args("--shard.index=3")).sharding == ShardingSettings(index=3, count=4)
    assert apply_flags(settings, args("--shard.count=2")).sharding == ShardingSettings(index=1, count=2)
    assert apply_flags(settings, args("--shard.index=0", "--shard.count=1")).sharding == ShardingSettings(index=0, count=1)
    with pytest.raises(ConfigError) as error:
        apply_flags(settings, args("--shard.count=1"))
    assert error.value.problems == ["sharding.index: must be below --shard.count (1), got 1"]


# --- start-up validation -------------------------------------------------------------------------


def test_bad_web_config_exits_2_with_every_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path / "c.yaml", config("pool-a"))
    web = write(tmp_path / "web.yml", "basic_auth_users:\n  alice: secret\ntls_server_config:\n  cert_file: missing.crt\n")
    assert main([f"--config.file={good}", f"--web.config.file={web}", "--web.listen-address=127.0.0.1:0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("standby-pool-exporter: invalid web configuration:")
    assert "basic_auth_users.alice" in err and "tls_server_config.cert_file" in err and "tls_server_config.key_file" in err
    assert "secret" not in err.replace("basic_auth_users", "")  # a plain-text password is not echoed


def test_bad_config_and_bad_web_config_are_reported_together(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write(tmp_path / "c.yaml", "polling:\n  interval: soon\n")
    web = write(tmp_path / "web.yml", "rate_limit: {}\n")
    assert main([f"--config.file={bad}", f"--web.config.file={web}", "--check-config"]) == 2
    err = capsys.readouterr().err
    assert "invalid configuration" in err and "polling.interval" in err
    assert "invalid web configuration" in err and "rate_limit" in err


def test_check_config_checks_the_web_config_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path / "c.yaml", config("pool-a"))
    web = write(tmp_path / "web.yml", "http_server_config:\n  headers:\n    X-Frame-Options: deny\n")
    assert main([f"--config.file={good}", f"--web.config.file={web}", "--check-config"]) == 0
    assert capsys.readouterr().out == "configuration OK: 1 pool(s)\nweb configuration OK\n"


# --- reload --------------------------------------------------------------------------------------


class FakePoller:
    def __init__(self, fail: bool = False) -> None:
        self.applied: list[Settings] = []
        self.fail = fail

    def reconfigure(self, settings: Settings) -> None:
        if self.fail:
            raise RuntimeError("scheduler is gone")
        self.applied.append(settings)


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, FakePoller, CollectorRegistry, FakeClock]:
    return write(tmp_path / "c.yaml", config("pool-a")), FakePoller(), CollectorRegistry(), FakeClock(tick=1.0)


def make_reloader(setup: tuple[Path, FakePoller, CollectorRegistry, FakeClock], *argv: str) -> Reloader:
    file, poller, registry, clock = setup
    running = apply_flags(load_file(file), args(*argv))
    return Reloader(str(file), args(*argv), running, poller.reconfigure, registry, clock=clock)


def test_initial_load_counts_as_a_successful_reload(setup) -> None:  # noqa: ANN001
    make_reloader(setup)
    registry = setup[2]
    assert registry.get_sample_value(OK) == 1 and registry.get_sample_value(OK_TIME) == 1001


def test_a_good_reload_is_applied_with_the_flags(setup, caplog: pytest.LogCaptureFixture) -> None:  # noqa: ANN001
    file, poller, registry, _ = setup
    reloader = make_reloader(setup, "--shard.count=3", "--shard.index=2")
    write(file, config("pool-a", "pool-b", sharding={"index": 0, "count": 5}))
    with caplog.at_level(logging.INFO, logger="exporter"):
        assert reloader.reload() == []
    assert [ref.name for ref in poller.applied[0].pools] == ["pool-a", "pool-b"]
    assert poller.applied[0].sharding == ShardingSettings(index=2, count=3)  # the flags still win
    assert reloader.running is poller.applied[0]
    assert registry.get_sample_value(OK) == 1 and registry.get_sample_value(OK_TIME) == 1002
    assert any(r.getMessage() == "configuration reloaded" for r in caplog.records)


def test_a_bad_reload_keeps_the_running_configuration(setup, caplog: pytest.LogCaptureFixture) -> None:  # noqa: ANN001
    file, poller, registry, _ = setup
    reloader = make_reloader(setup)
    running = reloader.running
    write(file, "polling:\n  interval: soon\n  concurrency: 0\n")
    with caplog.at_level(logging.INFO, logger="exporter"):
        problems = reloader.reload()
    assert len(problems) == 3 and any(p.startswith("polling.interval") for p in problems) and any(p.startswith("pools") for p in problems)
    assert poller.applied == [] and reloader.running is running
    assert registry.get_sample_value(OK) == 0 and registry.get_sample_value(OK_TIME) == 1001
    logged = [r for r in caplog.records if r.getMessage() == "invalid configuration"]
    assert [r.problem for r in logged] == problems and {r.levelno for r in logged} == {logging.ERROR}  # type: ignore[attr-defined]

    write(file, config("pool-a", "pool-c"))
    assert reloader.reload() == []
    assert registry.get_sample_value(OK) == 1 and registry.get_sample_value(OK_TIME) == 1002


def test_a_missing_file_is_a_failed_reload(setup) -> None:  # noqa: ANN001
    file, poller, registry, _ = setup
    reloader = make_reloader(setup)
    file.unlink()
    assert reloader.reload() == [f"{file}: file not found"]
    assert registry.get_sample_value(OK) == 0 and poller.applied == []


def test_flags_that_no_longer_fit_the_file_fail_the_reload(setup) -> None:  # noqa: ANN001
    file, poller, registry, _ = setup
    write(file, config("pool-a", sharding={"count": 2}))
    reloader = make_reloader(setup, "--shard.index=1")
    assert reloader.running.sharding == ShardingSettings(index=1, count=2)
    write(file, config("pool-a", sharding={"count": 1}))
    assert reloader.reload() == ["--shard.index: must be below sharding.count (1), got 1"]
    assert registry.get_sample_value(OK) == 0


def test_the_arm_origin_cannot_change_on_reload(setup) -> None:  # noqa: ANN001
    file, poller, registry, _ = setup
    reloader = make_reloader(setup)
    changed = config("pool-a")
    changed["azure"] = {"resource_manager_endpoint": "https://attacker.example"}
    write(file, changed)
    problems = reloader.reload()
    assert len(problems) == 1 and problems[0].startswith("azure.resource_manager_endpoint: cannot change on reload")
    assert poller.applied == [] and registry.get_sample_value(OK) == 0


def test_a_poller_that_refuses_the_settings_fails_the_reload(setup) -> None:  # noqa: ANN001
    file, _, registry, clock = setup
    poller = FakePoller(fail=True)
    reloader = Reloader(str(file), args(), load_file(file), poller.reconfigure, registry, clock=clock)
    assert reloader.reload() == ["cannot apply the configuration: RuntimeError: scheduler is gone"]
    assert registry.get_sample_value(OK) == 0


def test_demo_mode_does_not_reload(setup, caplog: pytest.LogCaptureFixture) -> None:  # noqa: ANN001
    file, poller, registry, clock = setup
    reloader = Reloader(None, args("--demo"), load_file(file), poller.reconfigure, registry, clock=clock)
    assert not reloader.supported
    with pytest.raises(ReloadNotSupported, match="--demo"):
        reloader.reload()
    with caplog.at_level(logging.WARNING, logger="exporter"):
        reloader.on_signal()
    assert any("SIGHUP ignored" in r.getMessage() for r in caplog.records)
    assert registry.get_sample_value(OK) == 1 and poller.applied == []


def test_a_changed_timeout_is_applied_with_a_warning(setup, caplog: pytest.LogCaptureFixture) -> None:  # noqa: ANN001
    file, poller, registry, _ = setup
    reloader = make_reloader(setup)
    changed = config("pool-a")
    changed["polling"] = {"timeout": "3s"}
    write(file, changed)
    with caplog.at_level(logging.WARNING, logger="exporter"):
        assert reloader.reload() == []
    assert any("polling.timeout changed" in r.getMessage() for r in caplog.records)
    assert registry.get_sample_value(OK) == 1


def test_a_reload_that_hangs_is_reported_failed_and_applies_nothing(setup) -> None:  # noqa: ANN001
    file, poller, registry, clock = setup
    release = threading.Event()

    def hanging_load(path: str) -> Settings:
        release.wait(10)
        return load_file(path)

    reloader = Reloader(str(file), args(), load_file(file), poller.reconfigure, registry, clock=clock, timeout=0.2, load=hanging_load)
    assert reloader.reload() == [f"{file}: reload did not finish within 0.2s"]
    assert registry.get_sample_value(OK) == 0
    release.set()  # the abandoned attempt finishes now: it must not apply its result
    time.sleep(0.2)
    assert poller.applied == [] and registry.get_sample_value(OK) == 0
    assert reloader.reload() == [] and registry.get_sample_value(OK) == 1 and len(poller.applied) == 1


def test_a_fifo_as_the_config_file_fails_the_reload_at_once(setup) -> None:  # noqa: ANN001
    file, poller, registry, _ = setup
    reloader = make_reloader(setup)
    file.unlink()
    os.mkfifo(file)
    assert reloader.reload() == [f"{file}: cannot read: not a regular file (a FIFO)"]
    assert registry.get_sample_value(OK) == 0 and poller.applied == []


def test_reload_requests_share_the_one_waiting_to_start(setup) -> None:  # noqa: ANN001
    file, poller, registry, clock = setup
    started, release = threading.Event(), threading.Event()
    loads: list[str] = []

    def slow_load(path: str) -> Settings:
        loads.append(path)
        started.set()
        release.wait(10)
        return load_file(path)

    reloader = Reloader(str(file), args(), load_file(file), poller.reconfigure, registry, clock=clock, load=slow_load)
    running = reloader.submit()
    assert started.wait(5)
    queued = [reloader.submit() for _ in range(5)]  # a SIGHUP storm while one reload runs
    assert all(future is queued[0] for future in queued) and queued[0] is not running
    release.set()
    assert running.result(5) == [] and queued[0].result(5) == []
    assert len(loads) == 2


def test_signal_handlers_are_installed_before_start_is_announced(tmp_path: Path) -> None:
    file = write(tmp_path / "c.yaml", config("pool-a", polling={"interval": "1h", "stale_after": "2h"}))
    stop = threading.Event()
    seen: list[object] = []

    class AtStart(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage() == "exporter started":
                seen.append(signal.getsignal(signal.SIGHUP))
                stop.set()

    handler = AtStart()
    logging.getLogger("exporter.cli").addHandler(handler)
    try:
        assert main([f"--config.file={file}", "--web.listen-address=127.0.0.1:0"], stop=stop) == 0
    finally:
        logging.getLogger("exporter.cli").removeHandler(handler)
    assert len(seen) == 1 and callable(seen[0])  # not SIG_DFL: a SIGHUP at that moment reloads, it does not kill
    assert signal.getsignal(signal.SIGHUP) == signal.SIG_DFL  # put back when main() returns
