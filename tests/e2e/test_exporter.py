"""The real exporter process against the simulator, with the real azure-identity fetching its token."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from exporter.simulator import Fault, Simulator, SimulatorServer
from tests.conftest import promtool_check_metrics
from tests.e2e.conftest import REPO, SUB, ExporterProcess, pool_config
from tests.support.process import run_cli

pytestmark = pytest.mark.e2e

POOL_LABELS = {"subscription_id": SUB, "resource_group": "rg-one", "pool_kind": "container_group"}


def instances(exporter: ExporterProcess, pool: str, state: str) -> float | None:
    return exporter.value("azure_standby_pool_instances", pool=pool, state=state, availability_zone="")


def up(exporter: ExporterProcess, pool: str) -> float | None:
    return exporter.value("azure_standby_pool_up", pool=pool)


@pytest.fixture
def two_pools(simulator: tuple[Simulator, SimulatorServer]) -> tuple[Simulator, SimulatorServer]:
    sim, server = simulator
    sim.create_seconds = (3600.0, 3600.0)  # new members stay Creating for the whole test
    sim.add_container_group_pool(SUB, "rg-one", "web", max_ready_capacity=6, running=4, creating=2, location="northeurope")
    sim.add_container_group_pool(SUB, "rg-one", "batch", max_ready_capacity=3, running=3)
    sim.add_container_group(SUB, "rg-one", "web-frontend")  # not a member: no '<pool>_' prefix
    sim.add_container_group(SUB, "rg-one", "webx_0000abcd")  # not a member of "web" either
    return sim, server


def test_publishes_the_metric_contract(two_pools: tuple[Simulator, SimulatorServer], start_exporter, promtool: str) -> None:
    sim, server = two_pools
    exporter = start_exporter(pool_config(server, ("rg-one", "web"), ("rg-one", "batch")), server)
    exporter.wait_for(lambda: up(exporter, "web") == 1 and up(exporter, "batch") == 1, what="both pools up")

    assert {state: instances(exporter, "web", state) for state in ("Creating", "Running", "Deleting")} == {"Creating": 2, "Running": 4, "Deleting": 0}
    assert exporter.value("azure_standby_pool_max_ready_capacity", pool="web") == 6
    assert exporter.value("azure_standby_pool_info", pool="web", location="northeurope") == 1
    assert exporter.value("azure_standby_pool_provisioning_state", pool="web", state="Succeeded") == 1
    assert exporter.value("azure_standby_pool_provisioning_state", pool="web", state="Failed") == 0
    assert exporter.value("azure_standby_pool_health_state", pool="web", state="healthy") == 1
    assert exporter.value("azure_standby_pool_members_ready", pool="web") == 4
    members = {labels["member"]: value for labels, value in exporter.samples("azure_standby_pool_member_ready") if labels["pool"] == "web"}
    assert len(members) == 6 and sorted(members.values()) == [0, 0, 1, 1, 1, 1]
    assert all(name.startswith("web_") for name in members)
    by_state = {labels["provisioning_state"]: value for labels, value in exporter.samples("azure_standby_pool_members") if labels["pool"] == "web"}
    assert by_state["Succeeded"] == 4 and by_state["Creating"] + by_state["Pending"] == 2
    assert by_state["Failed"] == 0
    assert exporter.value("azure_standby_pool_members_ready", pool="batch") == 3
    for labels, _ in exporter.samples("azure_standby_pool_up"):
        assert {k: labels[k] for k in POOL_LABELS} == POOL_LABELS
    assert exporter.value("azure_standby_pool_last_success_timestamp_seconds", pool="web") == pytest.approx(time.time(), abs=10)
    assert 0 < exporter.value("azure_standby_pool_poll_duration_seconds", pool="web") < 5
    assert exporter.value("azure_standby_pool_arm_requests_total", subscription_id=SUB, operation="runtime_view", code="200") >= 2
    assert 0 < exporter.value("azure_standby_pool_arm_ratelimit_remaining_reads", subscription_id=SUB) <= 250
    assert exporter.value("azure_standby_pool_exporter_build_info", version="0.1.0") == 1

    text = exporter.metrics_text()
    result = promtool_check_metrics(promtool, text)
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr


def test_reads_one_container_group_list_per_resource_group_per_cycle(two_pools: tuple[Simulator, SimulatorServer], start_exporter) -> None:
    sim, server = two_pools
    exporter = start_exporter(pool_config(server, ("rg-one", "web"), ("rg-one", "batch"), interval="1s"), server)
    exporter.wait_for(lambda: up(exporter, "web") == 1, what="first poll")
    sim.reset_requests()
    time.sleep(3.2)
    operations = [record.operation for record in sim.requests]
    first_pages = [r for r in sim.requests if r.operation == "container_group_list" and "$skiptoken" not in r.query]
    cycles = operations.count("runtime_view") / 2
    assert cycles >= 2
    assert len(first_pages) == pytest.approx(cycles, abs=1)
    # 11 container groups in the resource group, 5 per page: 3 pages per list.
    assert operations.count("container_group_list") == 3 * len(first_pages)
    # After the cold cycle only members that are not ready (2 Creating) are re-read; non-members never.
    assert operations.count("container_group") == pytest.approx(2 * cycles, abs=2)
    assert not any("web-frontend" in r.path.lower() or "webx_" in r.path.lower() for r in sim.requests if r.operation == "container_group")


def test_token_is_fetched_once_reused_and_never_logged(two_pools: tuple[Simulator, SimulatorServer], start_exporter) -> None:
    sim, server = two_pools
    issued: list[str] = []
    original = sim.tokens.issue

    def recording_issue(resource: str):  # noqa: ANN202
        token = original(resource)
        issued.append(token.access_token)
        return token

    sim.tokens.issue = recording_issue  # type: ignore[method-assign]
    exporter = start_exporter(pool_config(server, ("rg-one", "web")), server)
    def runtime_reads() -> float:
        return exporter.value("azure_standby_pool_arm_requests_total", subscription_id=SUB, operation="runtime_view", code="200") or 0

    exporter.wait_for(lambda: runtime_reads() >= 3, what="three cycles")
    assert len(issued) == 1
    assert all(r.status != 401 for r in sim.requests if r.operation != "token")
    sim.revoke_tokens()  # 401 mid-run: refreshed once, retried once
    exporter.wait_for(lambda: len(issued) == 2, what="token refresh")
    before = exporter.value("azure_standby_pool_arm_requests_total", subscription_id=SUB, operation="runtime_view", code="200")
    exporter.wait_for(lambda: runtime_reads() > before, what="polls after refresh")
    assert up(exporter, "web") == 1
    body = exporter.metrics_text() + exporter.get("/").text + exporter.get("/status.json").text
    assert exporter.stop() == 0
    for token in issued:
        assert token not in exporter.log_text()
        assert token not in body
    assert server.identity_header not in exporter.log_text()


def test_one_failing_pool_keeps_values_with_up_zero_and_recovers(two_pools: tuple[Simulator, SimulatorServer], start_exporter) -> None:
    sim, server = two_pools
    exporter = start_exporter(pool_config(server, ("rg-one", "web"), ("rg-one", "batch")), server)
    exporter.wait_for(lambda: up(exporter, "batch") == 1, what="first poll")
    sim.faults.add(Fault(match="standbycontainergrouppools/batch/runtimeviews", status=500))
    exporter.wait_for(lambda: up(exporter, "batch") == 0, what="batch down")
    assert up(exporter, "web") == 1
    assert instances(exporter, "batch", "Running") == 3  # last good values kept until stale
    assert exporter.value("azure_standby_pool_arm_requests_total", subscription_id=SUB, operation="runtime_view", code="500") >= 1
    failures = [line for line in exporter.lines if 'msg="pool part read failed"' in line and "pool=batch" in line]
    assert failures and 'part="runtime view"' in failures[0]
    assert failures and "kind=server" in failures[0] and "code=InternalServerError" in failures[0] and "request_id=" in failures[0]
    assert "request_id= " not in failures[0] and "Traceback" not in exporter.log_text()
    sim.faults.clear()
    exporter.wait_for(lambda: up(exporter, "batch") == 1, what="batch recovered")


def test_stale_values_vanish_and_404_drops_at_once(two_pools: tuple[Simulator, SimulatorServer], start_exporter) -> None:
    sim, server = two_pools
    exporter = start_exporter(pool_config(server, ("rg-one", "web"), ("rg-one", "batch"), stale_after="3s"), server)
    exporter.wait_for(lambda: up(exporter, "web") == 1 and up(exporter, "batch") == 1, what="first poll")
    sim.faults.add(Fault(match="standbycontainergrouppools/batch", status=503))
    exporter.wait_for(lambda: up(exporter, "batch") == 0, what="batch down")
    exporter.wait_for(lambda: instances(exporter, "batch", "Running") is None, timeout=10, what="batch values stale")
    names = _names_for_pool(exporter, "batch")
    # Only the runtime view's series go: the pool resource and the members were read and stay.
    assert not names & {"azure_standby_pool_instances", "azure_standby_pool_health_state"}
    assert {"azure_standby_pool_up", "azure_standby_pool_last_success_timestamp_seconds", "azure_standby_pool_max_ready_capacity",
            "azure_standby_pool_members_ready", "azure_standby_pool_resource_up", "azure_standby_pool_members_up"} <= names

    sim.delete_pool(SUB, "rg-one", "web")
    exporter.wait_for(lambda: up(exporter, "web") == 0, what="web gone")
    assert instances(exporter, "web", "Running") is None  # dropped at once, long before stale_after
    assert any("pool=web" in line and "kind=not_found" in line for line in exporter.lines)


def _names_for_pool(exporter: ExporterProcess, pool: str) -> set[str]:
    from prometheus_client.parser import text_string_to_metric_families

    return {s.name for f in text_string_to_metric_families(exporter.metrics_text()) for s in f.samples if s.labels.get("pool") == pool}


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        (Fault(match="runtimeviews", body=b'{"properties": {"instanceCountSummary": [', times=None), "bad_response"),
        (Fault(match="runtimeviews", body=b"<html><body>Service Unavailable</body></html>", content_type="text/html"), "bad_response"),
        (Fault(match="runtimeviews", delay=3.0), "transport"),
        (Fault(match="runtimeviews", status=403), "forbidden"),
    ],
    ids=["malformed-json", "html-200", "slow", "forbidden"],
)
def test_faults_mark_the_pool_down_and_recover(two_pools: tuple[Simulator, SimulatorServer], start_exporter, fault: Fault, kind: str) -> None:
    sim, server = two_pools
    exporter = start_exporter(pool_config(server, ("rg-one", "web"), timeout="1s"), server)
    exporter.wait_for(lambda: up(exporter, "web") == 1, what="first poll")
    sim.faults.add(fault)
    exporter.wait_for(lambda: up(exporter, "web") == 0, what="web down")
    assert exporter.get("/healthz").status_code == 200
    exporter.wait_for(lambda: any("pool=web" in line and f"kind={kind}" in line for line in exporter.lines), what=f"a {kind} log line")
    if kind == "forbidden":
        line = next(line for line in exporter.lines if "kind=forbidden" in line)
        assert "Microsoft.StandbyPool/standbyContainerGroupPools/runtimeViews/read" in line and "hint=" in line
    sim.faults.clear()
    exporter.wait_for(lambda: up(exporter, "web") == 1, timeout=15, what="recovery")


def test_throttling_is_retried_after_retry_after(two_pools: tuple[Simulator, SimulatorServer], start_exporter) -> None:
    sim, server = two_pools
    exporter = start_exporter(pool_config(server, ("rg-one", "batch"), interval="2s"), server)
    exporter.wait_for(lambda: up(exporter, "batch") == 1, what="first poll")
    sim.faults.add(Fault(match="standbycontainergrouppools/batch/runtimeviews", status=429, retry_after=1, times=1))
    exporter.wait_for(
        lambda: (exporter.value("azure_standby_pool_arm_requests_total", subscription_id=SUB, operation="runtime_view", code="429") or 0) == 1,
        what="a counted 429",
    )
    throttled = [r for r in sim.requests if r.operation == "runtime_view" and r.status == 429]
    after = [r for r in sim.requests if r.operation == "runtime_view" and r.time > throttled[0].time]
    exporter.wait_for(lambda: bool([r for r in sim.requests if r.operation == "runtime_view" and r.time > throttled[0].time]), what="the retry")
    after = [r for r in sim.requests if r.operation == "runtime_view" and r.time > throttled[0].time]
    assert after[0].time - throttled[0].time >= 0.95  # waited Retry-After
    assert after[0].status == 200
    assert up(exporter, "batch") == 1


def test_http_endpoints_and_readiness(simulator: tuple[Simulator, SimulatorServer], start_exporter) -> None:
    sim, server = simulator
    sim.add_container_group_pool(SUB, "rg-one", "web", max_ready_capacity=2)
    sim.faults.add(Fault(match="runtimeviews", delay=1.5, times=1))  # hold the first poll open
    exporter = start_exporter(pool_config(server, ("rg-one", "web"), timeout="5s"), server)
    assert exporter.get("/readyz").status_code == 503
    assert exporter.get("/healthz").status_code == 200
    exporter.wait_for(lambda: exporter.get("/readyz").status_code == 200, what="ready")
    landing = exporter.get("/")
    assert landing.status_code == 200 and "web" in landing.text and 'href="/metrics"' in landing.text
    gz = exporter.get("/metrics", headers={"Accept-Encoding": "gzip"})
    assert gz.headers.get("Content-Encoding") == "gzip" and "azure_standby_pool_up" in gz.text
    om = exporter.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert om.headers["Content-Type"].startswith("application/openmetrics-text") and om.text.endswith("# EOF\n")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stops_cleanly_within_five_seconds(two_pools: tuple[Simulator, SimulatorServer], start_exporter, sig: int) -> None:
    sim, server = two_pools
    sim.faults.add(Fault(match="containergroups", delay=4.0))  # a poll in flight while stopping
    exporter = start_exporter(pool_config(server, ("rg-one", "web"), timeout="5s"), server)
    time.sleep(0.5)
    started = time.monotonic()
    assert exporter.stop(sig) == 0
    assert time.monotonic() - started < 5
    assert 'msg="shutting down"' in exporter.log_text()


def test_overlapping_cycles_are_skipped_and_counted(two_pools: tuple[Simulator, SimulatorServer], start_exporter) -> None:
    sim, server = two_pools
    sim.faults.add(Fault(match="runtimeviews", delay=2.5))  # each cycle takes longer than the 1 s interval
    exporter = start_exporter(pool_config(server, ("rg-one", "web"), timeout="5s"), server)
    exporter.wait_for(lambda: (exporter.value("azure_standby_pool_poll_cycles_skipped_total") or 0) >= 1, timeout=15, what="a skipped cycle")
    runtime_views = [r for r in sim.requests if r.operation == "runtime_view"]
    starts = sorted(r.time for r in runtime_views)
    assert all(b - a >= 2.0 for a, b in zip(starts, starts[1:], strict=False))  # never stacked: one cycle at a time
    assert any("poll cycle skipped" in line for line in exporter.lines)


def test_check_config_exit_codes(tmp_path: Path) -> None:
    ok = run_cli("--check-config", "--config.file=config.example.yaml")
    assert ok.returncode == 0 and "configuration OK" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("polling:\n  interval: soon\npools:\n  - subscription_id: nope\n    resource_group: rg\n    name: a_b\n")
    for args in (("--check-config", f"--config.file={bad}"), (f"--config.file={bad}",)):
        result = run_cli(*args)
        assert result.returncode == 2
        for path in ("polling.interval", "pools[0].subscription_id", "pools[0].name"):
            assert path in result.stderr
        assert "Traceback" not in result.stderr
    missing = run_cli(f"--config.file={tmp_path / 'absent.yaml'}")
    assert missing.returncode == 2 and "file not found" in missing.stderr and "Traceback" not in missing.stderr


@pytest.mark.parametrize("args", [("--log.level=loud",), ("--web.listen-address=nowhere",), ("--web.telemetry-path=metrics",)])
def test_bad_flags_exit_2(args: tuple[str, ...]) -> None:
    result = run_cli(*args)
    assert result.returncode == 2 and "usage:" in result.stderr and "Traceback" not in result.stderr


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == "standby-pool-exporter 0.1.0"


def test_demo_serves_live_metrics_within_ten_seconds() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "exporter", "--demo", "--web.listen-address=127.0.0.1:0"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        started = time.monotonic()
        assert process.stderr is not None
        address = ""
        for line in process.stderr:
            if 'msg="exporter started"' in line:
                address = line.split(" address=")[1].split()[0]
                break
        import requests

        running_series = ""
        while time.monotonic() - started < 10 and not running_series:
            text = requests.get(f"http://{address}/metrics", timeout=5).text
            running_series = "\n".join(line for line in text.splitlines()
                                       if line.startswith("azure_standby_pool_instances") and 'state="Running"' in line)
            time.sleep(0.2)
        assert running_series, "no instance counts within 10 s"
        assert time.monotonic() - started < 10
    finally:
        process.terminate()
        assert process.wait(10) == 0
    assert process.stdout is not None
    banner = process.stdout.read()  # `make demo` says where to look
    assert f"Status page: http://{address}/\n" in banner and f"Metrics:     http://{address}/metrics" in banner
