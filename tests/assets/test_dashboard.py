"""grafana/standby-pools.json: importable as it is, with the datasource and filter variables, every
query filtered by them and using only the exporter's metrics, the panels the issue lists, and every
query valid PromQL (checked by promtool)."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from .conftest import REPO
from .promql import contract, selectors

DASHBOARD = REPO / "grafana" / "standby-pools.json"
GENERATOR = REPO / "grafana" / "generate_dashboard.py"
DS_UID = "${datasource}"
FILTERS = {"subscription_id": "$subscription_id", "resource_group": "$resource_group", "pool": "$pool"}
# Every query is scoped to one Prometheus setup's exporters by these (kubernetes-mixin's variables).
SCOPE = {"cluster": "$cluster", "job": "$job"}
# Exporter-wide metrics: they have no subscription, resource group or pool label to filter on.
EXPORTER_WIDE = {
    "azure_standby_pool_exporter_build_info",
    "azure_standby_pool_config_last_reload_successful",
    "azure_standby_pool_config_last_reload_success_timestamp_seconds",
    "azure_standby_pool_poll_cycles_skipped_total",
    "azure_standby_pool_poll_cycle_duration_seconds",
    "azure_standby_pool_web_auth_failures_total",
    "azure_standby_pool_web_tls_handshake_failures_total",
    "azure_standby_pool_web_auth_throttled_total",
    "azure_standby_pool_web_connections_closed_total",
}
# Grafana's own interval variables, replaced by values when a query is checked.
GRAFANA_VARIABLES = {"$__rate_interval": "2m", "$__interval": "1m", "$__range": "1h"}
# The scope variables on All, as Grafana fills them (allValue ".*").
SCOPE_ALL = {"$cluster": ".*", "$job": ".*"}


def load() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def all_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows included, and the panels inside collapsed rows."""
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def targets(dashboard: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for panel in all_panels(dashboard):
        for target in panel.get("targets", []):
            yield panel, target


def rows(dashboard: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Row title -> the panels under it (the top-level panels that follow it, or its collapsed ones)."""
    out: dict[str, list[dict[str, Any]]] = {}
    current: list[dict[str, Any]] | None = None
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            current = out.setdefault(panel["title"], list(panel.get("panels", [])))
        else:
            assert current is not None, f"panel {panel['title']!r} is outside every row"
            current.append(panel)
    return out


def variables(dashboard: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in dashboard["templating"]["list"]}


def fill(expr: str, values: dict[str, str]) -> str:
    for name, value in {**GRAFANA_VARIABLES, **SCOPE_ALL, **values}.items():
        expr = expr.replace(name, value)
    return expr


def variable_query(variable: dict[str, Any]) -> str:
    query = variable["query"]
    return query["query"] if isinstance(query, dict) else query


def test_committed_dashboard_is_what_the_generator_writes() -> None:
    spec = importlib.util.spec_from_file_location("generate_dashboard", GENERATOR)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert DASHBOARD.read_text(encoding="utf-8") == module.render(), (
        "grafana/standby-pools.json is out of date: run python grafana/generate_dashboard.py"
    )


def test_importable_and_provisionable_json_without_inputs() -> None:
    dashboard = load()
    assert dashboard["uid"] and dashboard["title"] and dashboard["panels"]
    assert dashboard["id"] is None, "an exported dashboard carries no database id"
    # No ${DS_...} input: import would fill it in, file provisioning never does.
    assert "__inputs" not in dashboard and "${DS_" not in DASHBOARD.read_text(encoding="utf-8")
    required = {(r["type"], r["id"]) for r in dashboard["__requires"]}
    assert ("datasource", "prometheus") in required
    panel_types = {p["type"] for p in all_panels(dashboard)} - {"row"}
    assert panel_types <= {r["id"] for r in dashboard["__requires"] if r["type"] == "panel"}


def test_datasource_variable_and_every_reference_to_it() -> None:
    dashboard = load()
    ds = variables(dashboard)["datasource"]
    assert ds["type"] == "datasource" and ds["query"] == "prometheus"
    # No starting value: Grafana picks its default Prometheus datasource, imported or provisioned.
    text = DASHBOARD.read_text(encoding="utf-8")
    assert ds["current"] == {}
    for panel in all_panels(dashboard):
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": DS_UID}, panel["title"]
    for panel, target in targets(dashboard):
        assert target["datasource"] == {"type": "prometheus", "uid": DS_UID}, panel["title"]
    for variable in variables(dashboard).values():
        if variable["type"] == "query":
            assert variable["datasource"]["uid"] == DS_UID, variable["name"]
    uids = set(re.findall(r'"uid": "([^"]*)"', text))
    assert uids == {DS_UID, dashboard["uid"], "-- Grafana --"}, "a datasource referenced by a fixed uid"


def test_filter_variables_are_multi_select_with_all_from_the_metrics() -> None:
    found = variables(load())
    metrics = contract()
    previous: list[str] = []
    for name in ("cluster", "job", "subscription_id", "resource_group", "pool"):
        variable = found[name]
        assert variable["type"] == "query" and variable["multi"] is True and variable["includeAll"] is True, name
        assert variable["allValue"] == ".*", f"{name}: All must match every value"
        query = variable_query(variable)
        match = re.fullmatch(r"label_values\((\w+)(\{.*\})?, (\w+)\)", query)
        assert match, f"{name}: {query}"
        assert match.group(1) in metrics and match.group(3) == name
        if name in SCOPE:
            assert match.group(1) == "azure_standby_pool_exporter_build_info", f"{name}: one series per exporter"
        selector = selectors(match.group(1) + (match.group(2) or ""))[0]
        assert {m[0] for m in selector.matchers} == set(previous), f"{name}: filtered by the variables before it"
        for label in previous:
            assert selector.matcher(label) == ("=~", f"${label}")
        previous.append(name)


def test_every_query_is_filtered_by_the_variables() -> None:
    metrics = contract()
    assert EXPORTER_WIDE == {n for n, m in metrics.items() if "subscription_id" not in m.labels}, (
        "the exception list must hold exactly the metrics without subscription_id"
    )
    dashboard = load()
    count = 0
    for panel, target in targets(dashboard):
        where = f"{panel['title']} / {target['refId']}"
        found = selectors(target["expr"])
        assert found, f"{where}: selects no metric"
        for sel in found:
            assert sel.metric in metrics, f"{where}: {sel.metric} is not an exporter metric"
            labels = metrics[sel.metric].labels
            for label, matcher in SCOPE.items():
                assert sel.matcher(label) == ("=~", matcher), f"{where}: {sel.metric} not scoped by {label}"
            for label, _, _ in sel.matchers:
                assert label in labels or label in SCOPE, f"{where}: {sel.metric} has no label {label}"
            wanted = [label for label in FILTERS if label in labels]
            assert wanted or sel.metric in EXPORTER_WIDE
            for label in wanted:
                assert sel.matcher(label) == ("=~", FILTERS[label]), f"{where}: {sel.metric} not filtered by {label}"
            count += 1
    assert count >= 30
    for annotation in dashboard["annotations"]["list"]:
        if "expr" in annotation:
            assert 'subscription_id=~"$subscription_id"' in annotation["expr"]
            assert 'cluster=~"$cluster", job=~"$job"' in annotation["expr"]


def _titles(panels: list[dict[str, Any]]) -> set[str]:
    return {p["title"] for p in panels}


def test_rows_and_panels_the_issue_lists() -> None:
    dashboard = load()
    found = rows(dashboard)
    assert list(found) == ["Overview", "Pool $pool", "Exporter"]
    assert {"Pools up", "Pools depleted", "Lowest ready ratio"} <= _titles(found["Overview"])
    pool_row = next(p for p in dashboard["panels"] if p["title"] == "Pool $pool")
    assert pool_row["repeat"] == "pool", "one row per selected pool"
    assert {"Ready instances vs capacity", "Instances by state", "Members by provisioning state", "Member readiness",
            "Health and provisioning state", "Forecast vs capacity"} <= _titles(found["Pool $pool"])
    assert {"Up per pool", "Age of the last successful poll", "Poll duration", "ARM requests by code",
            "ARM throttling", "Remaining ARM reads"} <= _titles(found["Exporter"])

    by_title = {p["title"]: p for p in all_panels(dashboard)}
    ready = by_title["Ready instances vs capacity"]
    used = {s.metric for t in ready["targets"] for s in selectors(t["expr"])}
    assert {"azure_standby_pool_instances", "azure_standby_pool_max_ready_capacity",
            "azure_standby_pool_min_ready_capacity"} <= used
    stacked = by_title["Instances by state"]
    assert stacked["fieldConfig"]["defaults"]["custom"]["stacking"]["mode"] == "normal"
    assert "by (state)" in stacked["targets"][0]["expr"]
    assert by_title["Member readiness"]["type"] == "table"
    assert by_title["Health and provisioning state"]["type"] == "state-timeline"
    assert "azure_standby_pool_health_state" in by_title["Health and provisioning state"]["targets"][0]["expr"]
    forecast = {s.metric for t in by_title["Forecast vs capacity"]["targets"] for s in selectors(t["expr"])}
    assert forecast == {"azure_standby_pool_forecast_instances_requested", "azure_standby_pool_max_ready_capacity"}
    assert "code" in by_title["ARM requests by code"]["targets"][0]["expr"]


def test_layout_ids_unique_and_no_overlap() -> None:
    panels = list(all_panels(load()))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    cells: dict[tuple[int, int], str] = {}
    for panel in panels:
        pos = panel["gridPos"]
        assert 0 <= pos["x"] and pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]
    for panel, target in targets(load()):
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]


def test_every_query_is_valid_promql(promtool: str, tmp_path: Path) -> None:
    """promtool parses each query, variables filled in as Grafana would for a multi-value selection."""
    values = {"$subscription_id": "(sub-1|sub-2)", "$resource_group": "rg-a", "$pool": ".*"}
    dashboard = load()
    exprs = [fill(t["expr"], values) for _, t in targets(dashboard)]
    exprs += [fill(a["expr"], values) for a in dashboard["annotations"]["list"] if "expr" in a]
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": expr} for i, expr in enumerate(exprs)
    ]}]}
    path = tmp_path / "dashboard_rules.yaml"
    path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in result.stdout
