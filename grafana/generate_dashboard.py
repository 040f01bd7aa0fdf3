#!/usr/bin/env python3
"""Writes grafana/standby-pools.json, the Grafana dashboard for azure-standby-pool-exporter.

The dashboard is generated so that every query carries the same variable filters and the layout stays
consistent; the generated file is committed (it is what people import) and a test
(tests/assets/test_dashboard.py) fails when it differs from what this script writes.

    python grafana/generate_dashboard.py          # rewrite grafana/standby-pools.json
    python grafana/generate_dashboard.py --check  # exit 1 if the committed file is out of date

Standard library only.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from generated import write_or_check  # noqa: E402 -- the shared generator command line in tools/

OUTPUT = Path(__file__).resolve().parent / "standby-pools.json"

DS = {"type": "prometheus", "uid": "${datasource}"}

# Label filters. Every series carries the scrape's job and, where Prometheus adds one (an external or
# target label, as kubernetes-mixin assumes), cluster: SCOPE picks one Prometheus setup's exporters.
# Pool metrics carry all three pool labels; the ARM self-metrics only subscription_id.
SCOPE = 'cluster=~"$cluster", job=~"$job"'
POOL = SCOPE + ', subscription_id=~"$subscription_id", resource_group=~"$resource_group", pool=~"$pool"'
SUB = SCOPE + ', subscription_id=~"$subscription_id"'
BY_POOL = "subscription_id, resource_group, pool, pool_kind"
# Ready instances, as the alert rules count them (prometheus/alerts.yaml): Running for container
# group pools; Running, Deallocated or Hibernated for virtual machine pools; summed per exporter
# instance, the largest kept (two replicas polling one pool do not double it).
READY_STATES = 'state=~"Running|Deallocated|Hibernated"'
READY = (f"max by ({BY_POOL}) (sum by ({BY_POOL}, instance) "
         f"(azure_standby_pool_instances{{{POOL}, {READY_STATES}}}))")
MAX_READY = f"max by ({BY_POOL}) (azure_standby_pool_max_ready_capacity{{{POOL}}})"
MIN_READY = f"max by ({BY_POOL}) (azure_standby_pool_min_ready_capacity{{{POOL}}})"
DYNAMIC = f"max by ({BY_POOL}) (azure_standby_pool_dynamic_sizing_enabled{{{POOL}}})"
# The conditions of AzureStandbyPoolDepleted and AzureStandbyPoolDepletionPredicted, without their `for`.
DEPLETED = f"({READY} == 0) unless on ({BY_POOL}) ({MAX_READY} == 0)"
# Seconds until the pool is empty at the trend of the last 30 minutes (AzureStandbyPoolDepletionPredicted
# fires below 3600 s for 5 minutes); no value while ready instances are not falling.
TIME_TO_EMPTY = f"({READY} > 0) / on ({BY_POOL}) (-deriv(({READY})[30m:1m]) > 0)"

RUNBOOK = "https://github.com/azure-standby-pool-exporter/azure-standby-pool-exporter/blob/main/docs/runbook.md"


class Layout:
    """Hands out panel ids and grid positions, row by row (the grid is 24 units wide)."""

    def __init__(self) -> None:
        self.next_id = 1
        self.x = 0
        self.y = 0
        self.line_height = 0

    def id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def place(self, w: int, h: int) -> dict[str, int]:
        if self.x + w > 24:
            self.newline()
        pos = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.x += w
        self.line_height = max(self.line_height, h)
        return pos

    def newline(self) -> None:
        self.y += self.line_height
        self.x = 0
        self.line_height = 0


def target(ref: str, expr: str, legend: str = "", *, instant: bool = False, table: bool = False) -> dict[str, Any]:
    t: dict[str, Any] = {
        "datasource": DS,
        "refId": ref,
        "expr": expr,
        "legendFormat": legend or "__auto",
        "range": not instant,
        "instant": instant,
        "editorMode": "code",
    }
    if table:
        t["format"] = "table"
    return t


def panel(layout: Layout, kind: str, title: str, description: str, targets: list[dict[str, Any]], w: int, h: int,
          *, defaults: dict[str, Any] | None = None, overrides: list[dict[str, Any]] | None = None,
          options: dict[str, Any] | None = None, transformations: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    p: dict[str, Any] = {
        "id": layout.id(),
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "gridPos": layout.place(w, h),
        "targets": targets,
        "fieldConfig": {"defaults": defaults or {}, "overrides": overrides or []},
        "options": options or {},
    }
    if transformations:
        p["transformations"] = transformations
    return p


def row(layout: Layout, title: str, *, repeat: str | None = None) -> dict[str, Any]:
    if layout.x or layout.line_height:
        layout.newline()
    r: dict[str, Any] = {
        "id": layout.id(),
        "type": "row",
        "title": title,
        "collapsed": False,
        "gridPos": {"h": 1, "w": 24, "x": 0, "y": layout.y},
        "panels": [],
    }
    if repeat:
        r["repeat"] = repeat
    layout.y += 1
    return r


def thresholds(*steps: tuple[float | None, str]) -> dict[str, Any]:
    return {"mode": "absolute", "steps": [{"color": color, "value": value} for value, color in steps]}


def timeseries_defaults(unit: str = "short", *, stack: bool = False, fill: int = 10, decimals: int | None = None,
                        threshold_line: bool = False) -> dict[str, Any]:
    d: dict[str, Any] = {
        "unit": unit,
        "min": 0,
        "color": {"mode": "palette-classic"},
        "custom": {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 50 if stack else fill,
            "showPoints": "never",
            "spanNulls": False,
            "stacking": {"mode": "normal" if stack else "none", "group": "A"},
            "axisPlacement": "auto",
            "thresholdsStyle": {"mode": "line" if threshold_line else "off"},
        },
    }
    if decimals is not None:
        d["decimals"] = decimals
    return d


def legend_options(*calcs: str, table: bool = False) -> dict[str, Any]:
    return {
        "legend": {"displayMode": "table" if table else "list", "placement": "bottom", "showLegend": True,
                   "calcs": list(calcs)},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }


def stat_options(text_mode: str = "value", graph: bool = False) -> dict[str, Any]:
    return {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "colorMode": "background" if not graph else "value",
        "graphMode": "area" if graph else "none",
        "justifyMode": "auto",
        "orientation": "auto",
        "textMode": text_mode,
    }


def by_name(name: str, **props: Any) -> dict[str, Any]:
    return {"matcher": {"id": "byName", "options": name}, "properties": [{"id": k, "value": v} for k, v in props.items()]}


def by_regexp(regexp: str, **props: Any) -> dict[str, Any]:
    return {"matcher": {"id": "byRegexp", "options": regexp},
            "properties": [{"id": k, "value": v} for k, v in props.items()]}


def by_ref(ref: str, **props: Any) -> dict[str, Any]:
    return {"matcher": {"id": "byFrameRefID", "options": ref},
            "properties": [{"id": k, "value": v} for k, v in props.items()]}


def up_down_timeline() -> dict[str, Any]:
    """Field defaults and options of a state timeline of 1 (up, green) / 0 (down, red) series."""
    return {
        "defaults": {"color": {"mode": "thresholds"}, "thresholds": thresholds((None, "red"), (1, "green")),
                     "mappings": value_map(("1", "up", "green"), ("0", "down", "red")),
                     "custom": {"fillOpacity": 80, "lineWidth": 0}},
        "options": {"showValue": "never", "mergeValues": True, "rowHeight": 0.8, "alignValue": "left",
                    "legend": {"showLegend": False, "displayMode": "list", "placement": "bottom"},
                    "tooltip": {"mode": "single", "sort": "none"}},
    }


def value_map(*entries: tuple[str, str, str]) -> list[dict[str, Any]]:
    return [{"type": "value", "options": {value: {"text": text, "color": color, "index": i}
                                          for i, (value, text, color) in enumerate(entries)}}]


def organize(exclude: list[str], rename: dict[str, str], order: list[str] | None = None) -> dict[str, Any]:
    options: dict[str, Any] = {"excludeByName": {name: True for name in exclude}, "renameByName": rename}
    if order:
        options["indexByName"] = {name: i for i, name in enumerate(order)}
    return {"id": "organize", "options": options}


HIDDEN_LABELS = ["Time", "__name__", "job", "instance"]


def overview(layout: Layout) -> list[dict[str, Any]]:
    panels = [row(layout, "Overview")]
    stat = "stat"
    panels.append(panel(
        layout, stat, "Pools monitored", "Standby pools the exporter polls, within the selected variables.",
        [target("A", f"count(azure_standby_pool_up{{{POOL}}})", "pools", instant=True)], 4, 4,
        defaults={"unit": "none", "color": {"mode": "fixed", "fixedColor": "blue"}}, options=stat_options()))
    panels.append(panel(
        layout, stat, "Pools up",
        "Pools whose runtime view (instance counts, health) was read in the last cycle (azure_standby_pool_up "
        "== 1). The pool resource and the members have health metrics of their own (Exporter row).",
        [target("A", f"count(azure_standby_pool_up{{{POOL}}} == 1) or vector(0)", "up", instant=True)], 4, 4,
        defaults={"unit": "none", "color": {"mode": "fixed", "fixedColor": "green"}}, options=stat_options()))
    panels.append(panel(
        layout, stat, "Pools depleted",
        "Pools with no ready instance, unless their max ready capacity is 0 on purpose "
        "(the condition of the AzureStandbyPoolDepleted alert, without its 5m delay).",
        [target("A", f"count({DEPLETED}) or vector(0)", "depleted", instant=True)], 4, 4,
        defaults={"unit": "none", "color": {"mode": "thresholds"}, "thresholds": thresholds((None, "green"), (1, "red"))},
        options=stat_options()))
    panels.append(panel(
        layout, stat, "Pools degraded", "Pools whose runtime view reports a health state other than healthy.",
        [target("A", f'count(azure_standby_pool_health_state{{{POOL}, state!="healthy"}} == 1) or vector(0)',
                "degraded", instant=True)], 4, 4,
        defaults={"unit": "none", "color": {"mode": "thresholds"},
                  "thresholds": thresholds((None, "green"), (1, "orange"))},
        options=stat_options()))
    panels.append(panel(
        layout, stat, "Lowest ready ratio",
        "Smallest ready instances / max ready capacity over the selected pools (pools with capacity 0 and "
        "dynamically sized pools left out). Below 50% for 15 minutes raises AzureStandbyPoolLow.",
        [target("A", f"min({READY} / on ({BY_POOL}) ({MAX_READY} > 0) unless on ({BY_POOL}) ({DYNAMIC} == 1))",
                "lowest", instant=True)], 4, 4,
        defaults={"unit": "percentunit", "min": 0, "max": 1, "decimals": 0, "color": {"mode": "thresholds"},
                  "thresholds": thresholds((None, "red"), (0.000001, "orange"), (0.5, "green"))},
        options=stat_options()))
    panels.append(panel(
        layout, stat, "Ready instances", "Ready instances summed over the selected pools.",
        [target("A", f"sum({READY})", "ready")], 4, 4,
        defaults={"unit": "none", "color": {"mode": "fixed", "fixedColor": "green"}},
        options=stat_options(graph=True)))
    layout.newline()
    panels.append(panel(
        layout, "table", "Pools",
        "One line per pool: ready instances against capacity and the state of its polling. "
        "Ready = Running (container groups), Running/Deallocated/Hibernated (virtual machines).",
        [
            target("A", READY, instant=True, table=True),
            target("B", MAX_READY, instant=True, table=True),
            target("C", f"{READY} / on ({BY_POOL}) ({MAX_READY} > 0)", instant=True, table=True),
            target("D", f"max by ({BY_POOL}) (azure_standby_pool_up{{{POOL}}})", instant=True, table=True),
            target("E", f"max by ({BY_POOL}) (time() - azure_standby_pool_last_success_timestamp_seconds{{{POOL}}})",
                   instant=True, table=True),
            target("F", TIME_TO_EMPTY, instant=True, table=True),
            target("G", DYNAMIC, instant=True, table=True),
        ], 24, 8,
        defaults={"custom": {"align": "auto", "filterable": True}},
        overrides=[
            by_name("Ready ratio", unit="percentunit", decimals=0),
            by_name("Up", mappings=value_map(("1", "up", "green"), ("0", "down", "red")),
                    **{"custom.cellOptions": {"type": "color-background"}}),
            by_name("Last success", unit="s", decimals=0),
            by_name("Time to empty", unit="s", decimals=0, thresholds=thresholds((None, "red"), (3600, "green")),
                    **{"custom.cellOptions": {"type": "color-text"}}),
            by_name("Dynamic sizing", mappings=value_map(("1", "on", "blue"), ("0", "off", "text"))),
        ],
        options={"showHeader": True, "sortBy": [{"displayName": "Ready ratio", "desc": False}]},
        transformations=[
            {"id": "merge", "options": {}},
            organize(["Time"], {"subscription_id": "Subscription", "resource_group": "Resource group", "pool": "Pool",
                                "pool_kind": "Kind", "Value #A": "Ready", "Value #B": "Max ready",
                                "Value #C": "Ready ratio", "Value #D": "Up", "Value #E": "Last success",
                                "Value #F": "Time to empty", "Value #G": "Dynamic sizing"},
                     ["pool", "resource_group", "subscription_id", "pool_kind", "Value #A", "Value #B", "Value #C",
                      "Value #F", "Value #G", "Value #D", "Value #E"]),
        ]))
    return panels


def per_pool(layout: Layout) -> list[dict[str, Any]]:
    panels = [row(layout, "Pool $pool", repeat="pool")]
    legend = "{{resource_group}}/{{pool}}"
    panels.append(panel(
        layout, "timeseries", "Ready instances vs capacity",
        "Ready instances (summed over availability zones) against the pool's max ready capacity and, for "
        "virtual machine pools with one, its min ready capacity.",
        [
            target("A", READY, f"{legend} ready"),
            target("B", MAX_READY, f"{legend} max ready capacity"),
            target("C", MIN_READY, f"{legend} min ready capacity"),
        ], 10, 8,
        defaults=timeseries_defaults(decimals=0),
        overrides=[
            by_regexp(".*max ready capacity", **{"custom.lineStyle": {"fill": "dash", "dash": [10, 10]},
                                                 "custom.fillOpacity": 0, "color": {"mode": "fixed", "fixedColor": "red"}}),
            by_regexp(".*min ready capacity", **{"custom.lineStyle": {"fill": "dot", "dash": [0, 10]},
                                                 "custom.fillOpacity": 0,
                                                 "color": {"mode": "fixed", "fixedColor": "orange"}}),
        ],
        options=legend_options("lastNotNull", "min", "max")))
    panels.append(panel(
        layout, "timeseries", "Time to empty",
        "The predictive signal: how long until the pool has no ready instance if it keeps losing them as it "
        "did over the last 30 minutes (ready now / fall rate of a linear fit). Empty while ready instances "
        "are steady or rising. Below 1 hour (the red zone) for 5 minutes, with at least 2 instances lost over "
        "30 minutes, raises AzureStandbyPoolDepletionPredicted.",
        [target("A", TIME_TO_EMPTY, f"{legend} time to empty")], 6, 8,
        defaults=timeseries_defaults("s", threshold_line=True)
        | {"thresholds": thresholds((None, "red"), (3600, "green")), "max": 4 * 3600},
        options=legend_options("lastNotNull", "min")))
    panels.append(panel(
        layout, "timeseries", "Instances by state",
        "Instances of the pool per state, stacked, from the runtime view (summed over availability zones).",
        [target("A", f"sum by (state) (azure_standby_pool_instances{{{POOL}}})", "{{state}}")], 8, 8,
        defaults=timeseries_defaults(stack=True, decimals=0),
        overrides=[
            by_name("Running", color={"mode": "fixed", "fixedColor": "green"}),
            by_name("Creating", color={"mode": "fixed", "fixedColor": "blue"}),
            by_name("Deleting", color={"mode": "fixed", "fixedColor": "red"}),
        ],
        options=legend_options("lastNotNull", "max")))
    panels.append(panel(
        layout, "timeseries", "Members by provisioning state",
        "Member resources of the pool (container groups or virtual machines) by provisioning state, stacked; "
        "the line is the members that are ready.",
        [
            target("A", f"sum by (provisioning_state) (azure_standby_pool_members{{{POOL}}})", "{{provisioning_state}}"),
            target("B", f"sum(azure_standby_pool_members_ready{{{POOL}}})", "ready members"),
        ], 8, 8,
        defaults=timeseries_defaults(stack=True, decimals=0),
        overrides=[by_ref("B", **{"custom.stacking": {"mode": "none", "group": "B"}, "custom.fillOpacity": 0,
                                  "custom.lineWidth": 2, "color": {"mode": "fixed", "fixedColor": "green"}})],
        options=legend_options("lastNotNull")))
    panels.append(panel(
        layout, "table", "Member readiness",
        "Every member now: ready or not, and for virtual machine pools whether it is still in the pool. "
        "Members not ready come first; one not ready for 30 minutes raises AzureStandbyPoolMemberNotReady.",
        [
            target("A", f"azure_standby_pool_member_ready{{{POOL}}}", instant=True, table=True),
            target("B", f"azure_standby_pool_member_in_pool{{{POOL}}}", instant=True, table=True),
        ], 8, 8,
        defaults={"custom": {"align": "auto", "filterable": True}},
        overrides=[
            by_name("Ready", mappings=value_map(("1", "ready", "green"), ("0", "not ready", "red")),
                    **{"custom.cellOptions": {"type": "color-background"}}),
            by_name("In pool", mappings=value_map(("1", "yes", "green"), ("0", "no", "orange"))),
        ],
        options={"showHeader": True, "sortBy": [{"displayName": "Ready", "desc": False}]},
        transformations=[
            {"id": "merge", "options": {}},
            organize(HIDDEN_LABELS + ["subscription_id", "pool_kind"],
                     {"member": "Member", "resource_group": "Resource group", "pool": "Pool", "Value #A": "Ready",
                      "Value #B": "In pool"},
                     ["member", "Value #A", "Value #B", "pool", "resource_group"]),
        ]))
    panels.append(panel(
        layout, "table", "Pool details",
        "The pool's static facts from azure_standby_pool_info (virtual machine state and scale set only for "
        "virtual machine pools).",
        [target("A", f"azure_standby_pool_info{{{POOL}}}", instant=True, table=True)], 8, 8,
        defaults={"custom": {"align": "auto"}},
        options={"showHeader": True},
        transformations=[
            organize(HIDDEN_LABELS + ["Value"],
                     {"subscription_id": "Subscription", "resource_group": "Resource group", "pool": "Pool",
                      "pool_kind": "Kind", "location": "Location", "virtual_machine_state": "VM state",
                      "scale_set": "Scale set"},
                     ["pool", "pool_kind", "location", "resource_group", "subscription_id", "virtual_machine_state",
                      "scale_set"]),
        ]))
    panels.append(panel(
        layout, "state-timeline", "Health and provisioning state",
        "When each health state (runtime view status) and each provisioning state of the pool held. "
        "Degraded for 15 minutes raises AzureStandbyPoolDegraded; Failed for 10 minutes "
        "AzureStandbyPoolProvisioningFailed.",
        [
            target("A", f"azure_standby_pool_health_state{{{POOL}}} == 1", "health {{state}}"),
            target("B", f"azure_standby_pool_provisioning_state{{{POOL}}} == 1", "provisioning {{state}}"),
        ], 24, 6,
        defaults={"color": {"mode": "thresholds"}, "thresholds": thresholds((None, "orange")),
                  "mappings": value_map(("1", "", "orange")), "custom": {"fillOpacity": 80, "lineWidth": 0}},
        overrides=[
            by_regexp("health healthy|provisioning Succeeded", thresholds=thresholds((None, "green")),
                      mappings=value_map(("1", "", "green"))),
            by_regexp("health degraded|provisioning Failed", thresholds=thresholds((None, "red")),
                      mappings=value_map(("1", "", "red"))),
        ],
        options={"showValue": "never", "mergeValues": True, "rowHeight": 0.8, "alignValue": "left",
                 "legend": {"showLegend": False, "displayMode": "list", "placement": "bottom"},
                 "tooltip": {"mode": "single", "sort": "none"}}))
    panels.append(panel(
        layout, "timeseries", "Forecast vs capacity",
        "Azure's demand forecast for the pool (instances requested per forecast interval): the current "
        "interval and the peak over the 12 forecast intervals, against the max ready capacity and the recent "
        "demand Azure reports with the forecast (the busiest and the latest past interval). A peak above "
        "capacity and over 1.25 times the busiest recent interval for 30 minutes raises "
        "AzureStandbyPoolForecastAboveCapacity. Empty when Azure has no forecast for the pool.",
        [
            target("A", f'max by ({BY_POOL}) (azure_standby_pool_forecast_instances_requested{{{POOL}, step="0"}})',
                   f"{legend} forecast, current interval"),
            target("B", f"max by ({BY_POOL}) (azure_standby_pool_forecast_instances_requested{{{POOL}}})",
                   f"{legend} forecast peak, next 12 intervals"),
            target("C", MAX_READY, f"{legend} max ready capacity"),
            target("D", f"max by ({BY_POOL}) (azure_standby_pool_recent_instances_requested{{{POOL}}})",
                   f"{legend} busiest recent interval"),
            target("E", f'max by ({BY_POOL}) (azure_standby_pool_recent_instances_requested{{{POOL}, step="1"}})',
                   f"{legend} latest interval"),
        ], 16, 8,
        defaults=timeseries_defaults(decimals=0),
        overrides=[by_regexp(".*max ready capacity", **{"custom.lineStyle": {"fill": "dash", "dash": [10, 10]},
                                                        "color": {"mode": "fixed", "fixedColor": "red"}})],
        options=legend_options("lastNotNull", "max")))
    panels.append(panel(
        layout, "stat", "Forecast",
        "How good and how fresh Azure's forecast is: its accuracy (0 to 100%), when the current forecast "
        "starts, and the length of one forecast interval.",
        [
            target("A", f"azure_standby_pool_forecast_accuracy_ratio{{{POOL}}}", "accuracy", instant=True),
            target("B", f"azure_standby_pool_forecast_start_timestamp_seconds{{{POOL}}} * 1000", "starts",
                   instant=True),
            target("C", f"azure_standby_pool_forecast_interval_seconds{{{POOL}}}", "interval", instant=True),
        ], 8, 8,
        defaults={"color": {"mode": "fixed", "fixedColor": "text"}},
        overrides=[
            by_ref("A", unit="percentunit", decimals=0),
            by_ref("B", unit="dateTimeFromNow"),
            by_ref("C", unit="s"),
        ],
        options=stat_options(text_mode="value_and_name") | {"colorMode": "none", "orientation": "horizontal"}))
    return panels


def exporter(layout: Layout) -> list[dict[str, Any]]:
    panels = [row(layout, "Exporter")]
    legend = "{{resource_group}}/{{pool}}"
    panels.append(panel(
        layout, "stat", "Exporter",
        "Exporter-wide: its version, whether its last configuration reload succeeded, the polling cycles "
        "it skipped over the time range because the previous cycle was still running, and its shards: the "
        "shard count the replicas report and how many shard ordinals are scraped (fewer for 5 minutes raises "
        "AzureStandbyPoolExporterShardsMissing).",
        [
            target("A", f"azure_standby_pool_exporter_build_info{{{SCOPE}}}", "version {{version}}", instant=True),
            target("B", f"min(azure_standby_pool_config_last_reload_successful{{{SCOPE}}})", "config reload", instant=True),
            target("C", f"sum(increase(azure_standby_pool_poll_cycles_skipped_total{{{SCOPE}}}[$__range]))", "skipped cycles",
                   instant=True),
            target("D", f"max(azure_standby_pool_exporter_total_shards{{{SCOPE}}})", "shards", instant=True),
            target("E", f"count(count by (shard_ordinal) (azure_standby_pool_exporter_shard_ordinal{{{SCOPE}}}))",
                   "shards scraped", instant=True),
        ], 24, 4,
        defaults={"color": {"mode": "thresholds"}, "thresholds": thresholds((None, "green"))},
        overrides=[
            by_ref("A", mappings=value_map(("1", "running", "green"))),
            by_ref("B", mappings=value_map(("1", "ok", "green"), ("0", "failed", "red"))),
            by_ref("C", decimals=0, thresholds=thresholds((None, "green"), (1, "orange"))),
            by_ref("D", decimals=0, color={"mode": "fixed", "fixedColor": "text"}),
            by_ref("E", decimals=0, color={"mode": "fixed", "fixedColor": "text"}),
        ],
        options=stat_options(text_mode="value_and_name") | {"orientation": "vertical"}))
    panels.append(panel(
        layout, "state-timeline", "Up per pool",
        "Whether the exporter's last read of each pool's runtime view (instance counts, health) succeeded. "
        "Down for 10 minutes raises AzureStandbyPoolExporterPollFailing; the reason is in the exporter's log "
        "and on its / page.",
        [target("A", f"azure_standby_pool_up{{{POOL}}}", legend)], 12, 8,
        **up_down_timeline()))
    panels.append(panel(
        layout, "timeseries", "Age of the last successful poll",
        "Seconds since each pool was last polled successfully; it should stay near the polling interval. "
        "Over 10 minutes (the red line) for 5 minutes raises AzureStandbyPoolExporterDataStale.",
        [target("A", f"time() - azure_standby_pool_last_success_timestamp_seconds{{{POOL}}}", legend)], 12, 8,
        defaults=timeseries_defaults("s", threshold_line=True) | {"thresholds": thresholds((None, "green"), (600, "red"))},
        options=legend_options("lastNotNull", "max")))
    panels.append(panel(
        layout, "state-timeline", "Pool resource and members",
        "The other two parts of each pool: its resource (capacity, provisioning state; up while a pool list "
        "read is within polling.pool_refresh) and its member list (up when this cycle's read succeeded). "
        "Down for 15 minutes raises AzureStandbyPoolExporterResourceStale or "
        "AzureStandbyPoolExporterMemberListFailing; the instance counts stay fresh meanwhile.",
        [
            target("A", f"azure_standby_pool_resource_up{{{POOL}}}", f"{legend} resource"),
            target("B", f"azure_standby_pool_members_up{{{POOL}}}", f"{legend} members"),
        ], 12, 8,
        **up_down_timeline()))
    panels.append(panel(
        layout, "timeseries", "Member read failures",
        "Members of each pool whose latest detail read failed (retried every cycle). Above 0 for 30 minutes "
        "raises AzureStandbyPoolExporterMemberReadsFailing.",
        [target("A", f"azure_standby_pool_member_read_failures{{{POOL}}}", legend)], 12, 8,
        defaults=timeseries_defaults(decimals=0) | {"thresholds": thresholds((None, "green"), (1, "orange"))},
        options=legend_options("lastNotNull", "max")))
    panels.append(panel(
        layout, "timeseries", "Poll duration",
        "Wall time of the last poll of each pool (every ARM read it needed, retries and waits included), and "
        "of the last whole poll cycle over every pool of the exporter (dashed); a cycle longer than the "
        "polling interval makes the exporter skip cycles.",
        [
            target("A", f"azure_standby_pool_poll_duration_seconds{{{POOL}}}", legend),
            target("B", f"max(azure_standby_pool_poll_cycle_duration_seconds{{{SCOPE}}})", "whole cycle (all pools)"),
        ], 8, 8,
        defaults=timeseries_defaults("s"),
        overrides=[by_ref("B", **{"custom.lineStyle": {"fill": "dash", "dash": [10, 10]}, "custom.fillOpacity": 0})],
        options=legend_options("lastNotNull", "max")))
    panels.append(panel(
        layout, "timeseries", "ARM requests by code",
        "ARM reads per second by HTTP status (\"error\": no response). 429 is throttling; 401/403 point at "
        "the identity or its role; 5xx and error at Azure or the network.",
        [target("A", f"sum by (code) (rate(azure_standby_pool_arm_requests_total{{{SUB}}}[$__rate_interval]))",
                "{{code}}")], 8, 8,
        defaults=timeseries_defaults("reqps", stack=True),
        overrides=[by_regexp("2..", color={"mode": "fixed", "fixedColor": "green"}),
                   by_name("429", color={"mode": "fixed", "fixedColor": "orange"}),
                   by_regexp("5..|error", color={"mode": "fixed", "fixedColor": "red"})],
        options=legend_options("mean", "max")))
    panels.append(panel(
        layout, "timeseries", "ARM requests by operation",
        "ARM reads per second by operation: what a polling cycle costs.",
        [target("A", f"sum by (operation) (rate(azure_standby_pool_arm_requests_total{{{SUB}}}[$__rate_interval]))",
                "{{operation}}")], 8, 8,
        defaults=timeseries_defaults("reqps", stack=True), options=legend_options("mean", "max")))
    panels.append(panel(
        layout, "timeseries", "ARM throttling",
        "HTTP 429 answers per second, the share of time the exporter waited for its own ARM read budget "
        "(right axis), and paging nextLinks refused because they left the ARM endpoint. Sustained 429s for "
        "15 minutes raise AzureStandbyPoolExporterThrottled.",
        [
            target("A", f"sum by (subscription_id) (rate(azure_standby_pool_arm_throttled_total{{{SUB}}}[$__rate_interval]))",
                   "429/s {{subscription_id}}"),
            target("B", "sum by (subscription_id) "
                        f"(rate(azure_standby_pool_arm_budget_wait_seconds_total{{{SUB}}}[$__rate_interval]))",
                   "budget wait {{subscription_id}}"),
            target("C", "sum by (subscription_id) "
                        f"(rate(azure_standby_pool_arm_next_links_refused_total{{{SUB}}}[$__rate_interval]))",
                   "nextLinks refused/s {{subscription_id}}"),
        ], 8, 8,
        defaults=timeseries_defaults("reqps"),
        overrides=[by_ref("B", unit="percentunit", **{"custom.axisPlacement": "right"})],
        options=legend_options("mean", "max")))
    panels.append(panel(
        layout, "timeseries", "Remaining ARM reads",
        "The last x-ms-ratelimit-remaining-subscription-reads ARM returned to the exporter, per subscription: "
        "the read budget left for this identity, shared with every other tool using it; and the last "
        "...-global-reads: the budget left for the whole subscription, all identities together.",
        [
            target("A", f"min by (subscription_id) (azure_standby_pool_arm_ratelimit_remaining_reads{{{SUB}}})",
                   "this identity {{subscription_id}}"),
            target("B", "min by (subscription_id) "
                        f"(azure_standby_pool_arm_ratelimit_remaining_global_reads{{{SUB}}})",
                   "whole subscription {{subscription_id}}"),
        ], 8, 8,
        defaults=timeseries_defaults() | {"thresholds": thresholds((None, "red"), (25, "green"))},
        options=legend_options("lastNotNull", "min")))
    panels.append(panel(
        layout, "timeseries", "Discovered pools",
        "Standby pools found by discovery, per subscription and kind.",
        [target("A", f"sum by (subscription_id, pool_kind) (azure_standby_pool_discovered_pools{{{SUB}}})",
                "{{pool_kind}} {{subscription_id}}")], 8, 8,
        defaults=timeseries_defaults(decimals=0), options=legend_options("lastNotNull")))
    return panels


def variable(name: str, label: str, query: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "definition": query,
        "query": {"query": query, "refId": "StandardVariableQuery"},
        "refresh": 2,  # on time range change
        "regex": "",
        "sort": 1,
        "multi": True,
        "includeAll": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [],
        "hide": 0,
        "skipUrlSync": False,
    }


def dashboard() -> dict[str, Any]:
    layout = Layout()
    panels = overview(layout) + per_pool(layout) + exporter(layout)
    return {
        "__elements": {},
        "__requires": [
            {"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.0.0"},
            {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"},
            {"type": "panel", "id": "stat", "name": "Stat", "version": ""},
            {"type": "panel", "id": "state-timeline", "name": "State timeline", "version": ""},
            {"type": "panel", "id": "table", "name": "Table", "version": ""},
            {"type": "panel", "id": "timeseries", "name": "Time series", "version": ""},
        ],
        "id": None,
        "uid": "azure-standby-pools",
        "title": "Azure Standby Pools",
        "description": "Standby pools (container groups and virtual machines) as azure-standby-pool-exporter sees "
                       "them: readiness against capacity, states, members, health, forecast, and the exporter's "
                       "own polling and ARM budget.",
        "tags": ["azure", "standby-pool", "azure-standby-pool-exporter"],
        "editable": True,
        "graphTooltip": 1,
        "liveNow": False,
        "refresh": "1m",
        "schemaVersion": 39,
        "version": 1,
        "weekStart": "",
        "fiscalYearStartMonth": 0,
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "links": [
            {"title": "Runbook", "type": "link", "url": RUNBOOK, "icon": "doc", "targetBlank": True,
             "tooltip": "What each standby pool alert means and what to do", "asDropdown": False,
             "includeVars": False, "keepTime": False, "tags": []},
        ],
        "annotations": {"list": [
            {
                "builtIn": 1,
                "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                "enable": True,
                "hide": True,
                "iconColor": "rgba(0, 211, 255, 1)",
                "name": "Annotations & Alerts",
                "type": "dashboard",
            },
            {
                "datasource": DS,
                "enable": True,
                "hide": False,
                "iconColor": "red",
                "name": "Standby pool alerts",
                "expr": f'ALERTS{{alertname=~"AzureStandbyPool.*", alertstate="firing", {SUB}}}',
                "step": "1m",
                "titleFormat": "{{alertname}}",
                "textFormat": "{{resource_group}}/{{pool}} {{severity}}",
                "tagKeys": "severity",
                "useValueForTime": False,
            },
        ]},
        "templating": {"list": [
            {
                "name": "datasource",
                "label": "Data source",
                "type": "datasource",
                "query": "prometheus",
                "regex": "",
                # No fixed value: Grafana starts on its default Prometheus datasource, whether the file is
                # imported or provisioned (file provisioning fills in no ${DS_...} input).
                "current": {},
                "options": [],
                "refresh": 1,
                "hide": 0,
                "includeAll": False,
                "multi": False,
                "skipUrlSync": False,
            },
            variable("cluster", "Cluster", "label_values(azure_standby_pool_exporter_build_info, cluster)"),
            variable("job", "Job", 'label_values(azure_standby_pool_exporter_build_info{cluster=~"$cluster"}, job)'),
            variable("subscription_id", "Subscription", f"label_values(azure_standby_pool_up{{{SCOPE}}}, subscription_id)"),
            variable("resource_group", "Resource group",
                     f'label_values(azure_standby_pool_up{{{SCOPE}, subscription_id=~"$subscription_id"}}, resource_group)'),
            variable("pool", "Pool",
                     f'label_values(azure_standby_pool_up{{{SCOPE}, subscription_id=~"$subscription_id", '
                     'resource_group=~"$resource_group"}, pool)'),
        ]},
        "panels": panels,
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    return write_or_check(OUTPUT, render, __doc__.splitlines()[0], "python grafana/generate_dashboard.py", argv)


if __name__ == "__main__":
    sys.exit(main())
