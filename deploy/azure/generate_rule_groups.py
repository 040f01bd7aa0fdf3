#!/usr/bin/env python3
"""Writes deploy/azure/prometheus-rule-groups.json, an ARM template of Azure Monitor Prometheus rule
groups, from prometheus/alerts.yaml, the one source of the rules.

    python deploy/azure/generate_rule_groups.py          # rewrite prometheus-rule-groups.json
    python deploy/azure/generate_rule_groups.py --check  # exit 1 if it is out of date

Mapping, one Microsoft.AlertsManagement/prometheusRuleGroups resource per group of alerts.yaml:
    group name      -> resource name (and the rule group's description)
    group interval  -> properties.interval, ISO 8601 (PT1M when the group has none)
    alert / record  -> alert / record
    expr            -> expression, unchanged
    for             -> for, ISO 8601 duration (5m -> PT5M, 1h30m -> PT1H30M, 1d -> P1D)
    labels          -> labels, unchanged (severity stays a label too)
    labels.severity -> severity 0-4 (Azure Monitor's Sev0 critical, Sev1 error, Sev2 warning,
                       Sev3 informational, Sev4 verbose; see SEVERITY)
    annotations     -> annotations, unchanged
and every alert gets the action group (parameter actionGroupResourceId) and auto-resolution.
tests/assets/test_azure.py re-generates the template and compares, and checks it against Microsoft's
ARM template schema. Needs PyYAML (a dependency of the exporter).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "tools"))
from generated import write_or_check  # noqa: E402 -- the shared generator command line in tools/

SOURCE = HERE.parents[1] / "prometheus" / "alerts.yaml"
OUTPUT = HERE / "prometheus-rule-groups.json"
API_VERSION = "2023-03-01"

SEVERITY = {"critical": 0, "error": 1, "warning": 2, "info": 3, "informational": 3, "verbose": 4, "none": 4}
UNITS = {"y": 365 * 86400, "w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0.001}
DURATION = re.compile(r"(\d+)(ms|y|w|d|h|m|s)")


def iso8601(duration: str) -> str:
    """A Prometheus duration (5m, 1h30m, 1d) as ISO 8601 (PT5M, PT1H30M, P1D)."""
    if not duration or DURATION.sub("", duration) != "":
        raise ValueError(f"not a Prometheus duration: {duration!r}")
    seconds = sum(int(n) * UNITS[unit] for n, unit in DURATION.findall(duration))
    if seconds != int(seconds) or seconds <= 0:
        raise ValueError(f"{duration!r}: Azure Monitor takes whole, positive seconds")
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    time = "".join(f"{v}{u}" for v, u in ((hours, "H"), (minutes, "M"), (secs, "S")) if v)
    return "P" + (f"{days}D" if days else "") + (f"T{time}" if time else "")


def azure_rule(rule: dict[str, Any]) -> dict[str, Any]:
    unknown = set(rule) - {"alert", "record", "expr", "for", "labels", "annotations"}
    if unknown:
        raise ValueError(f"{rule.get('alert') or rule.get('record')}: no Azure Monitor equivalent for {sorted(unknown)}")
    out: dict[str, Any] = {}
    if "record" in rule:
        out["record"] = rule["record"]
        out["expression"] = rule["expr"]
        if rule.get("labels"):
            out["labels"] = rule["labels"]
        return out
    severity = rule.get("labels", {}).get("severity", "")
    if severity not in SEVERITY:
        raise ValueError(f"{rule['alert']}: severity label {severity!r} is none of {sorted(SEVERITY)}")
    out["alert"] = rule["alert"]
    out["expression"] = rule["expr"]
    if "for" in rule:
        out["for"] = iso8601(rule["for"])
    out["severity"] = SEVERITY[severity]
    out["labels"] = rule.get("labels", {})
    out["annotations"] = rule.get("annotations", {})
    out["enabled"] = True
    out["resolveConfiguration"] = {"autoResolved": True, "timeToResolve": "PT10M"}
    out["actions"] = [{"actionGroupId": "[parameters('actionGroupResourceId')]"}]
    return out


def rule_group(group: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "Microsoft.AlertsManagement/prometheusRuleGroups",
        "apiVersion": API_VERSION,
        "name": group["name"],
        "location": "[parameters('location')]",
        "properties": {
            "description": f"azure-standby-pool-exporter: {group['name']} (generated from prometheus/alerts.yaml)",
            "scopes": ["[parameters('azureMonitorWorkspaceResourceId')]"],
            "clusterName": "[parameters('clusterName')]",
            "enabled": True,
            "interval": iso8601(group.get("interval", "1m")),
            "rules": [azure_rule(rule) for rule in group["rules"]],
        },
    }


def template(groups: list[dict[str, Any]]) -> dict[str, Any]:
    def parameter(description: str, **extra: Any) -> dict[str, Any]:
        return {"type": "string", **extra, "metadata": {"description": description}}

    return {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "metadata": {"description": "GENERATED from prometheus/alerts.yaml by deploy/azure/generate_rule_groups.py: "
                                    "do not edit, edit prometheus/alerts.yaml and re-run the script."},
        "parameters": {
            "azureMonitorWorkspaceResourceId": parameter(
                "Resource id of the Azure Monitor workspace whose metrics the rules evaluate"),
            "actionGroupResourceId": parameter("Resource id of the action group notified when an alert fires"),
            "clusterName": parameter(
                "Evaluate the rules only on the data of this cluster (its `cluster` label); empty for all",
                defaultValue=""),
            "location": parameter("Region of the rule groups: the Azure Monitor workspace's",
                                  defaultValue="[resourceGroup().location]"),
        },
        "resources": [rule_group(group) for group in groups],
    }


def render() -> str:
    groups = yaml.safe_load(SOURCE.read_text(encoding="utf-8"))["groups"]
    return json.dumps(template(groups), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    return write_or_check(OUTPUT, render, __doc__.splitlines()[0], "python deploy/azure/generate_rule_groups.py", argv)


if __name__ == "__main__":
    sys.exit(main())
