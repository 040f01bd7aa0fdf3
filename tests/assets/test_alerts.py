"""prometheus/alerts.yaml: promtool accepts it, its unit tests pass and cover every alert, each alert
has what an on-call engineer needs (severity, summary, description with the pool's labels, a runbook
section), and the unit tests are sharp enough to catch a broken rule."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from .conftest import REPO
from .promql import TARGET_LABELS, contract, selectors

ALERTS_FILE = REPO / "prometheus" / "alerts.yaml"
TESTS_DIR = REPO / "prometheus" / "tests"
RUNBOOK = REPO / "docs" / "runbook.md"
RUNBOOK_URL = "https://github.com/azure-standby-pool-exporter/azure-standby-pool-exporter/blob/main/docs/runbook.md#"
PREFIX = "AzureStandbyPool"
POOL_LABELS = ("subscription_id", "resource_group", "pool")

# What the issue asks for -> the alert that implements it, and its severity.
REQUIRED = {
    "pool depleted": ("AzureStandbyPoolDepleted", "critical"),
    "pool low": ("AzureStandbyPoolLow", "warning"),
    "pool degraded": ("AzureStandbyPoolDegraded", "warning"),
    "pool provisioning failed": ("AzureStandbyPoolProvisioningFailed", "warning"),
    "members not ready for long": ("AzureStandbyPoolMemberNotReady", "warning"),
    "forecast above capacity": ("AzureStandbyPoolForecastAboveCapacity", "warning"),
    "exporter failing to poll a pool": ("AzureStandbyPoolExporterPollFailing", "warning"),
    "exporter data stale": ("AzureStandbyPoolExporterDataStale", "warning"),
    "ARM throttling the exporter": ("AzureStandbyPoolExporterThrottled", "warning"),
    "exporter absent": ("AzureStandbyPoolExporterAbsent", "critical"),
    "pool predicted to run dry": ("AzureStandbyPoolDepletionPredicted", "warning"),
    "exporter target down": ("AzureStandbyPoolExporterDown", "critical"),
    "exporter shard lost": ("AzureStandbyPoolExporterShardsMissing", "critical"),
    "exporter shard counts disagree": ("AzureStandbyPoolExporterShardingMismatch", "critical"),
    "member list failing": ("AzureStandbyPoolExporterMemberListFailing", "warning"),
    "member reads failing persistently": ("AzureStandbyPoolExporterMemberReadsFailing", "warning"),
    "pool resource stale": ("AzureStandbyPoolExporterResourceStale", "warning"),
}
JOB_MATCHER = ("job", "=", "azure-standby-pool-exporter")
# Prometheus' own series the rules may use, with their labels.
PROMETHEUS_SERIES = {"up": TARGET_LABELS}


def load_rules(path: Path = ALERTS_FILE) -> list[dict]:
    return [rule for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"] for rule in group["rules"]]


def alerts() -> dict[str, dict]:
    rules = load_rules()
    assert all("alert" in rule for rule in rules), "alerts.yaml holds alerting rules only"
    return {rule["alert"]: rule for rule in rules}


def test_files() -> list[Path]:
    return sorted(TESTS_DIR.glob("*.yaml"))


test_files.__test__ = False  # a helper, not a test


def run(cmd: list[str], cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_promtool_check_rules(promtool: str) -> None:
    result = run([promtool, "check", "rules", "--lint=all", "--lint-fatal", str(ALERTS_FILE)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(load_rules())} rules found" in result.stdout


def test_promtool_unit_tests_pass(promtool: str) -> None:
    files = test_files()
    assert files, "no promtool unit tests in prometheus/tests/"
    result = run([promtool, "test", "rules", *map(str, files)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(files), result.stdout


def test_unit_tests_cover_every_alert_firing_and_silent() -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    for path in test_files():
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert doc["rule_files"] == ["../alerts.yaml"], f"{path.name} must test prometheus/alerts.yaml"
        for case in doc["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else silent).add(check["alertname"])
    names = set(alerts())
    assert firing - names == set() and silent - names == set(), "tests name alerts that do not exist"
    assert names - firing == set(), "alerts never shown firing in a unit test"
    assert names - silent == set(), "alerts never shown staying silent in a unit test"


def test_required_alerts_exist_with_severity() -> None:
    found = alerts()
    for what, (name, severity) in REQUIRED.items():
        assert name in found, f"no alert for {what}"
        assert found[name]["labels"]["severity"] == severity, name


def test_every_alert_is_complete() -> None:
    for name, rule in alerts().items():
        assert re.fullmatch(rf"{PREFIX}(?:[A-Z][a-z0-9]+)+", name), f"{name}: CamelCase with prefix {PREFIX}"
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        annotations = rule["annotations"]
        assert set(annotations) >= {"summary", "description", "runbook_url"}, name
        assert annotations["summary"].strip() and annotations["description"].strip(), name
        assert re.fullmatch(r"\d+[smh]", rule.get("for", "")), f"{name}: needs a `for` against blips"


def _output_labels(rule: dict) -> set[str] | None:
    """Labels of the alert's series, as far as the expression's outer aggregation tells."""
    expr = rule["expr"]
    match = re.match(r"\s*(?:\(\s*)*(?:sum|max|min|count) by \(([^)]*)\)", expr)
    if match:
        return {label.strip() for label in match.group(1).split(",")}
    if re.match(r"\s*(absent|stdvar)\(|\s*[\d\s^]+max\(", expr):
        return set()  # absent(...), stdvar(...), 2 ^ max(...) - ...: no labels
    metrics = {s.metric for s in selectors(expr)}
    if len(metrics) == 1:
        metric = metrics.pop()
        if metric in PROMETHEUS_SERIES:
            return set(PROMETHEUS_SERIES[metric])
        return set(contract()[metric].labels) | TARGET_LABELS
    return None


def test_descriptions_name_the_pool_and_use_only_existing_labels() -> None:
    for name, rule in alerts().items():
        labels = _output_labels(rule)
        assert labels is not None, f"{name}: cannot tell the labels of its expression"
        text = " ".join(rule["annotations"].values())
        used = set(re.findall(r"\$labels\.(\w+)", text))
        assert used <= labels, f"{name}: annotations use labels its series do not have: {used - labels}"
        if "pool" in labels:
            assert used >= set(POOL_LABELS), f"{name}: description must name subscription, resource group, pool"


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def runbook_sections() -> dict[str, str]:
    sections: dict[str, str] = {}
    current = None
    for line in RUNBOOK.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            current = _slug(line[3:])
            sections[current] = ""
        elif current:
            sections[current] += line + "\n"
    return sections


def test_runbook_urls_point_at_a_runbook_section() -> None:
    sections = runbook_sections()
    for name, rule in alerts().items():
        url = rule["annotations"]["runbook_url"]
        assert url.startswith(RUNBOOK_URL), f"{name}: {url}"
        anchor = url[len(RUNBOOK_URL):]
        assert anchor == name.lower(), f"{name}: link to its own section"
        assert anchor in sections, f"{name}: docs/runbook.md has no section #{anchor}"
        body = sections[anchor]
        assert "**What it means.**" in body and "**What to do.**" in body, f"runbook #{anchor} incomplete"
        severity = rule["labels"]["severity"]
        assert f"**Severity:** {severity}." in body, f"runbook #{anchor} must state severity {severity}"


def test_alert_metrics_are_in_the_contract_with_their_labels() -> None:
    metrics = {name: m.labels | TARGET_LABELS for name, m in contract().items()} | PROMETHEUS_SERIES
    for name, rule in alerts().items():
        found = selectors(rule["expr"])
        assert found, name
        for sel in found:
            assert sel.metric in metrics, f"{name}: {sel.metric} is not an exporter metric"
            for label, _, _ in sel.matchers:
                assert label in metrics[sel.metric], f"{name}: {sel.metric} has no label {label}"


def test_every_selector_names_the_exporter_job_the_one_thing_users_edit() -> None:
    """The job selector is how the rules tell this exporter's series from any other's; it is the one
    edit the header of alerts.yaml documents, so every selector must carry exactly that matcher."""
    text = ALERTS_FILE.read_text(encoding="utf-8")
    assert 'THE ONE THING TO EDIT: every selector carries job="azure-standby-pool-exporter"' in text
    for name, rule in alerts().items():
        for sel in selectors(rule["expr"]):
            assert JOB_MATCHER in sel.matchers, f"{name}: {sel.metric} has no {JOB_MATCHER} matcher"


def test_depletion_rules_do_not_need_the_pool_resource() -> None:
    """Capacity series may be missing while the runtime view is fresh: rules that page on an empty or
    emptying pool may only leave out pools whose capacity IS 0 (`unless ... == 0`), never require it.
    (prometheus/tests/pools_test.yaml shows them firing without any capacity series.)"""
    for name in ("AzureStandbyPoolDepleted", "AzureStandbyPoolDepletionPredicted"):
        expr = alerts()[name]["expr"]
        head, _, tail = expr.rpartition("unless on")
        assert re.fullmatch(r"\s*\([^)]*\)\s*\(\s*max by \([^)]*\) \(\s*azure_standby_pool_max_ready_capacity\{[^}]*\}"
                            r"\s*\) == 0\s*\)\s*", tail), f"{name}: {tail}"
        assert "max_ready_capacity" not in head, f"{name} must not require capacity series"


def test_low_leaves_out_dynamically_sized_pools() -> None:
    expr = alerts()["AzureStandbyPoolLow"]["expr"]
    assert re.search(r"unless on \([^)]*\)\s*\(\s*max by \([^)]*\) \(\s*azure_standby_pool_dynamic_sizing_enabled"
                     r"\{[^}]*\}\s*\) == 1\s*\)\s*$", expr), expr


def _mutated_run(promtool: str, tmp_path: Path, name: str, mutate) -> subprocess.CompletedProcess[str]:
    doc = yaml.safe_load(ALERTS_FILE.read_text(encoding="utf-8"))
    for group in doc["groups"]:
        for rule in group["rules"]:
            if rule["alert"] == name:
                mutate(rule)
    work = tmp_path / name
    (work / "tests").mkdir(parents=True)
    (work / "alerts.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    copies = []
    for path in test_files():
        shutil.copy(path, work / "tests" / path.name)
        copies.append(str(work / "tests" / path.name))
    return run([promtool, "test", "rules", *copies], cwd=work)


@pytest.mark.parametrize("name", sorted(alerts()))
def test_unit_tests_catch_a_missing_for(promtool: str, tmp_path: Path, name: str) -> None:
    """Without its `for`, an alert fires too early: its own unit tests must notice."""
    result = _mutated_run(promtool, tmp_path, name, lambda rule: rule.pop("for"))
    assert result.returncode != 0, f"removing `for` from {name} went unnoticed"
    assert f"alertname: {name}," in result.stdout + result.stderr


@pytest.mark.parametrize("name", sorted(alerts()))
def test_unit_tests_catch_an_alert_that_never_fires(promtool: str, tmp_path: Path, name: str) -> None:
    result = _mutated_run(promtool, tmp_path, name, lambda rule: rule.update(expr="vector(1) > 2"))
    assert result.returncode != 0, f"{name} never firing went unnoticed"
    assert f"alertname: {name}," in result.stdout + result.stderr


