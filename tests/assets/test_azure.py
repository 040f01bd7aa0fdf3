"""deploy/azure/: the Azure Monitor rule groups are prometheus/alerts.yaml under the stated mapping and
pass Microsoft's ARM template schema; the managed-Prometheus ServiceMonitor reaches the exporter."""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import subprocess
import sys
from typing import Any

import pytest
import yaml

from .conftest import REPO
from .schemas import arm_template_errors, crd_errors, yaml_docs

AZURE = REPO / "deploy" / "azure"
TEMPLATE = AZURE / "prometheus-rule-groups.json"
GENERATOR = AZURE / "generate_rule_groups.py"
ALERTS = REPO / "prometheus" / "alerts.yaml"
# Prometheus severity label -> Azure Monitor severity (Sev0 critical .. Sev4 verbose).
SEVERITY = {"critical": 0, "error": 1, "warning": 2, "info": 3}
PROMETHEUS_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def prometheus_seconds(duration: str) -> float:
    parts = re.findall(r"(\d+)(ms|[smhdwy])", duration)
    assert "".join(n + u for n, u in parts) == duration, duration
    return sum(int(n) * PROMETHEUS_UNITS[u] for n, u in parts)


def iso_seconds(duration: str) -> float:
    match = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?", duration)
    assert match and duration not in ("P", "PT") and not duration.endswith("T"), f"not ISO 8601: {duration}"
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


def generator() -> Any:
    spec = importlib.util.spec_from_file_location("generate_rule_groups", GENERATOR)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def template() -> dict[str, Any]:
    return json.loads(TEMPLATE.read_text(encoding="utf-8"))


def test_template_is_what_the_generator_writes_from_alerts_yaml() -> None:
    assert TEMPLATE.read_text(encoding="utf-8") == generator().render(), "run python deploy/azure/generate_rule_groups.py"
    check = subprocess.run([sys.executable, str(GENERATOR), "--check"], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr


def test_rule_groups_equal_the_alert_rules_under_the_mapping() -> None:
    groups = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"]
    resources = template()["resources"]
    assert [r["name"] for r in resources] == [g["name"] for g in groups]
    for group, resource in zip(groups, resources, strict=True):
        assert resource["type"] == "Microsoft.AlertsManagement/prometheusRuleGroups"
        properties = resource["properties"]
        assert iso_seconds(properties["interval"]) == prometheus_seconds(group.get("interval", "1m"))
        assert len(properties["rules"]) == len(group["rules"]), group["name"]
        for rule, azure in zip(group["rules"], properties["rules"], strict=True):
            name = rule["alert"]
            assert azure["alert"] == name and azure["expression"] == rule["expr"], name
            assert iso_seconds(azure["for"]) == prometheus_seconds(rule["for"]), name
            assert azure["severity"] == SEVERITY[rule["labels"]["severity"]], name
            assert azure["labels"] == rule["labels"] and azure["annotations"] == rule["annotations"], name
            assert azure["enabled"] is True
            assert azure["actions"] == [{"actionGroupId": "[parameters('actionGroupResourceId')]"}], name


def test_workspace_and_action_group_are_parameters() -> None:
    doc = template()
    parameters = doc["parameters"]
    for name in ("azureMonitorWorkspaceResourceId", "actionGroupResourceId"):
        assert parameters[name]["type"] == "string" and "defaultValue" not in parameters[name], name
    for resource in doc["resources"]:
        assert resource["properties"]["scopes"] == ["[parameters('azureMonitorWorkspaceResourceId')]"]
        assert resource["location"] == "[parameters('location')]"


def test_template_passes_microsofts_arm_template_schema() -> None:
    errors = arm_template_errors(template())
    assert not errors, errors


@pytest.mark.parametrize("breakage", ["severity as text", "no scopes", "unknown api version", "rule without expression"])
def test_arm_schema_rejects_a_broken_template(breakage: str) -> None:
    broken = copy.deepcopy(template())
    group = broken["resources"][0]
    if breakage == "severity as text":
        group["properties"]["rules"][0]["severity"] = "critical"
    elif breakage == "no scopes":
        del group["properties"]["scopes"]
    elif breakage == "unknown api version":
        group["apiVersion"] = "2099-01-01"
    else:
        del group["properties"]["rules"][0]["expression"]
    assert arm_template_errors(broken), breakage


@pytest.mark.parametrize(("prometheus", "iso"), [("5m", "PT5M"), ("1h30m", "PT1H30M"), ("90s", "PT1M30S"),
                                                 ("1d", "P1D"), ("1w", "P7D"), ("2d12h", "P2DT12H")])
def test_durations_become_iso_8601(prometheus: str, iso: str) -> None:
    assert generator().iso8601(prometheus) == iso


@pytest.mark.parametrize("bad", ["", "5", "5 m", "500ms", "0s"])
def test_durations_azure_cannot_take_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        generator().iso8601(bad)


def test_unknown_severity_or_unsupported_field_is_refused() -> None:
    module = generator()
    with pytest.raises(ValueError, match="severity"):
        module.azure_rule({"alert": "A", "expr": "up == 0", "labels": {"severity": "page"}})
    with pytest.raises(ValueError, match="keep_firing_for"):
        module.azure_rule({"alert": "A", "expr": "up == 0", "keep_firing_for": "5m", "labels": {"severity": "warning"}})


def test_managed_prometheus_servicemonitor_reaches_the_exporter_service() -> None:
    [monitor] = yaml_docs(AZURE / "ama-metrics-servicemonitor.yaml")
    assert monitor["apiVersion"] == "azmonitoring.coreos.com/v1" and not crd_errors(monitor)
    spec = monitor["spec"]
    # Microsoft's template: without these limits the add-on may drop series.
    assert (spec["labelLimit"], spec["labelNameLengthLimit"], spec["labelValueLengthLimit"]) == (63, 511, 1023)
    [service] = yaml_docs(REPO / "deploy" / "kubernetes" / "service.yaml")
    assert spec["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    [endpoint] = spec["endpoints"]
    assert endpoint["port"] == service["spec"]["ports"][0]["name"] and endpoint["path"] == "/metrics"
    assert spec["jobLabel"] == "app.kubernetes.io/name"


def test_readme_covers_the_path_and_the_limits_of_managed_prometheus() -> None:
    readme = (AZURE / "README.md").read_text(encoding="utf-8")
    for needle in ("az monitor account create", "ama-metrics-servicemonitor.yaml", "prometheus-rule-groups.json",
                   "az deployment group create", "remote_write", "azuread", "Monitoring Metrics Publisher",
                   "Azure Arc", "Managed Grafana", "grafana/standby-pools.json"):
        assert needle in readme, needle
