"""The dashboard and the alert rules against a real Prometheus server scraping the real exporter.

Starts the ARM simulator, the exporter (``python -m exporter``) polling it every second, and Debian's
``/usr/bin/prometheus`` on loopback with 1 s scrape and evaluation intervals and ``prometheus/alerts.yaml``
loaded unchanged. Through Prometheus's HTTP API it checks that:

- the exporter target is up and every alert rule is loaded;
- every query of every dashboard panel, with the variables filled in as Grafana fills them for a
  multi-value selection, parses and returns data (range queries as ranges, instant ones as instants);
- once the simulator depletes one pool, AzureStandbyPoolDepleted is pending or firing for that pool and
  only for it, and the dashboard's "Pools depleted" stat counts it.

The rules are not shortened for the test: the alert's 5m ``for`` only delays "firing", and "pending"
(the expression is true) is what a 1 s evaluation can show within the test's time.

The simulated world is chosen so that every panel has something to show: a zonal container group pool
and a virtual machine pool with min ready capacity, both with a forecast; a pool in a second
subscription found by discovery; and a few HTTP 429 answers so that the throttling counters move.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.support.process import wait_until as support_wait_until

from .conftest import REPO, require_binary
from .promql import TARGET_LABELS, contract
from .test_dashboard import fill, load, targets

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SUB = "11111111-1111-1111-1111-111111111111"
SUB2 = "22222222-2222-2222-2222-222222222222"
JOB = "azure-standby-pool-exporter"
# (subscription, resource group, pool, kind) the exporter is configured with
CONFIGURED = [
    (SUB, "rg-cg", "cg-full", "container_group"),
    (SUB, "rg-cg", "cg-drain", "container_group"),
    (SUB, "rg-vm", "vm-pool", "virtual_machine"),
]
DISCOVERED = (SUB2, "rg-disc", "cg-found", "container_group")
DRAIN = CONFIGURED[1]
TEST_BUDGET = 60.0  # seconds for the whole test, startup included


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.25) -> Any:
    """Poll the stack every ``interval`` s; an answer Prometheus cannot give yet counts as "not yet"."""
    return support_wait_until(check, timeout, what, interval=interval, tolerate=(requests.RequestException, KeyError, ValueError))


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
        return f"--- {self.name} log (tail) ---\n" + "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)


def start(name: str, cmd: list[str], tmp: Path, env: dict[str, str] | None = None) -> Process:
    log = tmp / f"{name}.log"
    handle = log.open("wb")
    try:
        popen = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT)
    finally:
        handle.close()
    return Process(name, popen, log)


@dataclass
class Stack:
    sim: Any
    exporter: Process
    exporter_url: str
    prometheus: Process
    prometheus_url: str
    started: float

    def api(self, path: str, **params: Any) -> Any:
        response = requests.get(f"{self.prometheus_url}/api/v1/{path}", params=params, timeout=5)
        body = response.json()
        assert body["status"] == "success", f"{path} {params}: {body}"
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return self.api("query", query=expr)["result"]

    def query_range(self, expr: str, seconds: int = 30) -> list[dict[str, Any]]:
        now = time.time()
        return self.api("query_range", query=expr, start=now - seconds, end=now, step=1)["result"]

    def logs(self) -> str:
        return self.exporter.tail() + "\n" + self.prometheus.tail()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One simulator, exporter and Prometheus for the module's tests, which run in file order."""
    started = time.monotonic()
    tmp_path = tmp_path_factory.mktemp("prometheus-integration")
    prometheus_bin = require_binary("prometheus", "/usr/bin/prometheus")
    from exporter.simulator import Fault, Simulator, SimulatorServer

    sim = Simulator(seed=1)
    sim.add_container_group_pool(SUB, "rg-cg", "cg-full", max_ready_capacity=5, zones=["1", "2"], forecast=True)
    sim.add_container_group_pool(SUB, "rg-cg", "cg-drain", max_ready_capacity=3)
    sim.add_virtual_machine_pool(SUB, "rg-vm", "vm-pool", max_ready_capacity=4, min_ready_capacity=2, forecast=True)
    sim.add_container_group_pool(SUB2, "rg-disc", "cg-found", max_ready_capacity=2)
    # A few throttled reads (each answered 429 with Retry-After: 1), retried by the exporter.
    sim.faults.add(Fault(match="/cg-full/runtimeviews", status=429, times=2))
    server = SimulatorServer(sim, host="127.0.0.1", port=0, tick_interval=0.5).start()
    processes: list[Process] = []
    try:
        config = {
            "azure": {"resource_manager_endpoint": server.url},
            "polling": {"interval": "1s", "timeout": "5s", "stale_after": "1m"},
            "pools": [
                {"subscription_id": sub, "resource_group": rg, "name": name, "kind": kind}
                for sub, rg, name, kind in CONFIGURED
            ],
            "discovery": {"subscriptions": [SUB2], "interval": "5s"},
        }
        config_file = tmp_path / "exporter.yaml"
        config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
        exporter_port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "IDENTITY_", "MSI_"))}
        env.update(IDENTITY_ENDPOINT=server.identity_endpoint, IDENTITY_HEADER=server.identity_header,
                   PYTHONUNBUFFERED="1")
        exporter = start("exporter", [
            sys.executable, "-m", "exporter", "--config.file", str(config_file),
            "--web.listen-address", f"127.0.0.1:{exporter_port}", "--log.level", "debug",
        ], tmp_path, env)
        processes.append(exporter)

        rules = tmp_path / "alerts.yaml"
        rules.write_bytes((REPO / "prometheus" / "alerts.yaml").read_bytes())
        prometheus_port = free_port()
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules)],
            "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"]}]}],
        }), encoding="utf-8")
        prometheus = start("prometheus", [
            prometheus_bin, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prometheus_port}", "--log.level=warn",
        ], tmp_path)
        processes.append(prometheus)

        stack = Stack(sim, exporter, f"http://127.0.0.1:{exporter_port}", prometheus,
                      f"http://127.0.0.1:{prometheus_port}", started)
        try:
            wait_until(lambda: requests.get(f"{stack.exporter_url}/healthz", timeout=1).ok, 20, "the exporter")
            wait_until(lambda: requests.get(f"{stack.prometheus_url}/-/ready", timeout=1).ok, 20, "Prometheus")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{stack.logs()}") from None
        for process in processes:
            assert process.popen.poll() is None, f"{process.name} exited\n{stack.logs()}"
        yield stack
    finally:
        for process in reversed(processes):
            process.stop()
        server.stop()


def _variable_values() -> dict[str, str]:
    """$subscription_id, $resource_group, $pool as Grafana fills a multi-value selection of every pool."""
    pools = [*CONFIGURED, DISCOVERED]

    def regex(values: list[str]) -> str:
        unique = sorted(set(values))
        return unique[0] if len(unique) == 1 else "(" + "|".join(unique) + ")"

    return {
        "$subscription_id": regex([p[0] for p in pools]),
        "$resource_group": regex([p[1] for p in pools]),
        "$pool": regex([p[2] for p in pools]),
    }


def _depleted_alerts(stack: Stack) -> list[dict[str, Any]]:
    return [a for a in stack.api("alerts")["alerts"] if a["labels"]["alertname"] == "AzureStandbyPoolDepleted"]


def remaining(stack: Stack) -> float:
    """Seconds left of the module's budget."""
    return TEST_BUDGET - (time.monotonic() - stack.started)


def test_target_up_and_every_alert_rule_loaded(stack: Stack) -> None:
    def target_up() -> bool:
        active = stack.api("targets")["activeTargets"]
        return any(t["labels"]["job"] == JOB and t["health"] == "up" for t in active)

    try:
        wait_until(target_up, min(15, remaining(stack)), f"target {JOB} up")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{stack.logs()}") from None
    loaded = {r["name"] for g in stack.api("rules")["groups"] for r in g["rules"] if r["type"] == "alerting"}
    expected = {r["alert"] for g in yaml.safe_load((REPO / "prometheus" / "alerts.yaml").read_text())["groups"]
                for r in g["rules"]}
    assert loaded == expected
    unhealthy: dict[str, str] = {}

    def rules_ok() -> bool:
        unhealthy.clear()
        for group in stack.api("rules")["groups"]:
            for rule in group["rules"]:
                if rule["health"] != "ok":
                    unhealthy[rule["name"]] = f"{rule['health']} {rule.get('lastError', '')}"
        return not unhealthy

    try:
        wait_until(rules_ok, min(5, remaining(stack)), "every rule evaluated without error")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {unhealthy}") from None


def test_exported_metrics_and_labels_are_the_contract(stack: Stack) -> None:
    """What Prometheus scraped matches tests/fixtures/assets/metric_names.txt, which the static tests
    check the dashboard and the rules against: no metric outside it, no label it does not list."""
    metrics = contract()
    wait_until(lambda: stack.query("azure_standby_pool_exporter_build_info"), min(10, remaining(stack)),
               "the first scrape")
    series = stack.api("series", **{"match[]": '{__name__=~"azure_standby_pool_.+"}'})
    assert series
    for labels in series:
        name = labels.pop("__name__")
        assert name in metrics, f"the exporter exposes {name}, missing from the contract fixture"
        extra = set(labels) - metrics[name].labels - TARGET_LABELS
        assert not extra, f"{name} has labels {extra} the contract fixture does not list"


def test_every_dashboard_query_parses_and_returns_data(stack: Stack) -> None:
    values = _variable_values()
    dashboard = load()
    queries = [(f"{panel['title']} / {target['refId']}", fill(target["expr"], values), target.get("instant", False))
               for panel, target in targets(dashboard)]
    annotations = [(f"annotation {a['name']}", fill(a["expr"], values))
                   for a in dashboard["annotations"]["list"] if "expr" in a]
    for name, expr in annotations:
        stack.query(expr)  # parses (api() asserts status success); it has data only while an alert fires
    assert len(queries) >= 30

    empty: dict[str, str] = {}

    def all_return_data() -> bool:
        empty.clear()
        for name, expr, instant in queries:
            result = stack.query(expr) if instant else stack.query_range(expr)
            if not result:
                empty[name] = expr
        return not empty

    try:
        wait_until(all_return_data, max(1.0, min(25, remaining(stack) - 20)), "data for every dashboard query",
                   interval=1)
    except AssertionError as exc:
        listing = "\n".join(f"  {name}: {expr}" for name, expr in sorted(empty.items()))
        raise AssertionError(f"{exc}; {len(empty)} of {len(queries)} queries return no data:\n{listing}") from None


def test_depleting_a_pool_raises_its_depletion_alert_and_no_other(stack: Stack) -> None:
    values = _variable_values()
    depleted_stat = next(fill(t["expr"], values) for p, t in targets(load()) if p["title"] == "Pools depleted")
    # Every configured pool polled and scraped, none depleted.
    wait_until(lambda: len(stack.query('azure_standby_pool_up == 1')) >= len(CONFIGURED),
               max(1.0, min(15, remaining(stack) - 15)), "every configured pool up in Prometheus")
    assert float(stack.query(depleted_stat)[0]["value"][1]) == 0
    assert _depleted_alerts(stack) == [], "no pool is depleted yet"

    sub, rg, pool, kind = DRAIN
    stack.sim.deplete(sub, rg, pool)
    wait_until(lambda: _depleted_alerts(stack), max(1.0, min(20, remaining(stack) - 3)),
               f"AzureStandbyPoolDepleted for {pool}")
    time.sleep(min(3, max(0.0, remaining(stack) - 1)))  # a few more evaluations: no other pool joins
    alerts = _depleted_alerts(stack)
    assert len(alerts) == 1, alerts
    labels = alerts[0]["labels"]
    assert (labels["subscription_id"], labels["resource_group"], labels["pool"], labels["pool_kind"]) == DRAIN
    assert labels["severity"] == "critical"
    assert alerts[0]["state"] in {"pending", "firing"}
    assert alerts[0]["annotations"]["runbook_url"].endswith("#azurestandbypooldepleted")
    assert f"Standby pool {pool} ({kind}) in resource group {rg}, subscription {sub}" in alerts[0]["annotations"]["description"]
    assert float(stack.query(depleted_stat)[0]["value"][1]) == 1

    elapsed = time.monotonic() - stack.started
    assert elapsed < TEST_BUDGET, f"the module took {elapsed:.1f}s"
