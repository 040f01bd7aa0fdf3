"""Scenarios evaluated by Prometheus' own rule engine (promtool): how early and how reliably the alerts
of prometheus/alerts.yaml warn. Each test prints its measured figure (``pytest -s`` shows it); the
runbook's table ("How early the alerts warn") must hold exactly these figures.

One promtool run evaluates every scenario (about 10 s on 2 cores); see tests/assets/scenarios.py.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from .promql import TARGET_LABELS, contract
from .scenario_series import JOB, STALE, Scrapes, values_notation
from .scenarios import SCENARIOS, SEED, Outcome, Row, measure, parse_report, run_all, table

RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "runbook.md"


@pytest.fixture(scope="module")
def outcomes(promtool: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    return run_all(promtool, tmp_path_factory.mktemp("scenarios"))


@pytest.fixture(scope="module")
def rows(outcomes: dict[str, Outcome]) -> dict[str, Row]:
    return measure(outcomes)


@pytest.mark.parametrize("key", list(SCENARIOS))
def test_scenario(rows: dict[str, Row], key: str) -> None:
    row = rows[key]
    print(f"\n{row.scenario}: {row.measured} (fired: {row.alerts}; required: {row.required})")
    assert row.passed, f"{row.scenario}: measured {row.measured}; required {row.required}"


def test_drain_warns_with_the_predictive_alert_first(outcomes: dict[str, Outcome]) -> None:
    first = outcomes["drain"].first(pool="cg-drain")
    assert first is not None and first[1]["alertname"] == "AzureStandbyPoolDepletionPredicted"
    assert first[1]["severity"] == "warning"
    # The pool beside it, in steady state, stays silent throughout.
    assert outcomes["drain"].first(pool="vm-steady") is None
    assert outcomes["burst"].first(pool="cg-steady") is None


def test_runbook_table_holds_the_measured_figures(rows: dict[str, Row]) -> None:
    text = RUNBOOK.read_text(encoding="utf-8")
    assert table(rows) in text, (
        "docs/runbook.md's scenario table differs from the measurement; "
        f"replace it with (python -m tests.assets.scenarios):\n{table(rows)}"
    )


ONLY_MIX_POOLS = {"azure_standby_pool_vm_state_distribution_ratio"}


def test_every_scenario_publishes_the_whole_contract_with_target_labels() -> None:
    """The synthetic exporter publishes every metric of the contract, with exactly its labels plus
    job/instance, and Prometheus' own `up` per target."""
    metrics = contract()
    for key in ("shards_healthy", "drain"):
        scrapes = SCENARIOS[key](SEED).run()
        seen: dict[str, set[frozenset[str]]] = {}
        for name, labels in scrapes.series:
            seen.setdefault(name, set()).add(frozenset(dict(labels)))
            assert dict(labels)["job"] == JOB and "instance" in dict(labels), (name, labels)
        # Only a Mix VM pool has a state distribution; the scenarios' VM pools keep one state.
        assert set(seen) == set(metrics) - ONLY_MIX_POOLS | {"up"}, f"{key}: missing {set(metrics) - ONLY_MIX_POOLS - set(seen)}"
        for name, label_sets in seen.items():
            wanted = TARGET_LABELS if name == "up" else metrics[name].labels | TARGET_LABELS
            assert label_sets == {wanted}, f"{key}: {name} has labels {label_sets}, contract {wanted}"


def _at(series: list[float | str | None], index: int) -> float | None:
    value = series[index]
    return None if value in (None, STALE) else float(value)


def test_series_agree_with_each_other() -> None:
    """At every scrape of every pool: ready instances = ready members = members whose member_ready is 1;
    Creating instances = members in provisioning state Creating; last success moves with the polls."""
    scrapes = SCENARIOS["noise"](SEED).run()
    by_pool: dict[str, dict[str, list[list[float | str | None]]]] = {}
    for (name, labels), values in scrapes.series.items():
        d = dict(labels)
        if "pool" in d:
            by_pool.setdefault(d["pool"], {}).setdefault(f"{name}|{d.get('state', d.get('provisioning_state', ''))}",
                                                          []).append(values)
    assert set(by_pool) == {"cg-noisy", "vm-noisy"}
    for pool, series in by_pool.items():
        ready_state = "Running" if pool.startswith("cg") else "Deallocated"
        varied = set()
        for i in range(scrapes.scrapes):
            ready = sum(_at(v, i) or 0 for v in series[f"azure_standby_pool_instances|{ready_state}"])
            creating = sum(_at(v, i) or 0 for v in series["azure_standby_pool_instances|Creating"])
            members_ready = _at(series["azure_standby_pool_members_ready|"][0], i)
            member_ready = sum(_at(v, i) or 0 for v in series["azure_standby_pool_member_ready|"])
            members_creating = _at(series["azure_standby_pool_members|Creating"][0], i)
            assert ready == members_ready == member_ready and creating == members_creating, (pool, i)
            assert 14 <= ready <= 20, (pool, i, ready)
            varied.add(ready)
            assert _at(series["azure_standby_pool_last_success_timestamp_seconds|"][0], i) == i // 2 * 60
        assert len(varied) >= 5, f"{pool}: the noise should move the ready count ({sorted(varied)})"


def _ready(scrapes: Scrapes, pool: str) -> list[float]:
    """Ready instances of ``pool`` at every scrape, as the rules count them."""
    series = [values for (name, labels), values in scrapes.series.items()
              if name == "azure_standby_pool_instances" and ("pool", pool) in labels
              and dict(labels)["state"] in ("Running", "Deallocated", "Hibernated")]
    return [sum(_at(v, i) or 0 for v in series) for i in range(scrapes.scrapes)]


def test_scenarios_are_what_the_issue_describes() -> None:
    drain = SCENARIOS["drain"](SEED)
    ready = _ready(drain.run(), "cg-drain")
    assert drain.zero_minute == 100 and ready[60 * 2] == 20 and ready[80 * 2] == 10, "20 -> 0 over 40 minutes"
    assert ready[99 * 2] > 0 and all(r == 0 for r in ready[100 * 2:])
    assert all(a >= b for a, b in zip(ready[120:-1], ready[121:], strict=True)), "a steady drain, never refilled back up"
    burst = SCENARIOS["burst"](SEED)
    ready = _ready(burst.run(), "cg-burst")
    assert ready[59 * 2] == 20 and burst.zero_minute is not None and burst.zero_minute - 60 <= 2, "20 -> 0 in 2 minutes"
    dynamic = SCENARIOS["dynamic"](SEED)
    scrapes = dynamic.run()
    for pool in ("cg-dynamic", "vm-dynamic"):
        ready = _ready(scrapes, pool)
        assert min(ready) >= 20 and max(ready) <= 30 and len(set(ready)) >= 5, pool
    capacity = {dict(labels)["pool"]: values[0] for (name, labels), values in scrapes.series.items()
                if name == "azure_standby_pool_max_ready_capacity"}
    assert capacity == {"cg-dynamic": 100, "vm-dynamic": 100}
    for key in ("noise", "dynamic", "shards_healthy"):
        assert SCENARIOS[key](SEED).minutes == 360, "six hours"
    stop = SCENARIOS["shard_stop"](SEED)
    assert [(r.instance, r.shard_ordinal, r.total_shards) for r in stop.replicas] == [
        ("exporter-0:9863", 0, 2), ("exporter-1:9863", 1, 2)] and stop.vanish == {"exporter-1:9863": 60}


def test_a_vanished_target_goes_stale_at_once() -> None:
    scenario = SCENARIOS["shard_stop"](SEED)
    scrapes = scenario.run()
    stop = scenario.vanish["exporter-1:9863"] * 2  # scrape index
    gone = [values for (name, labels), values in scrapes.series.items() if ("instance", "exporter-1:9863") in labels]
    assert gone and all(values[stop] == STALE and values[stop - 1] not in (None, STALE) for values in gone
                        if values[stop - 1] is not None)
    assert all(all(v is None for v in values[stop + 1:]) for values in gone)
    kept = [values for (name, labels), values in scrapes.series.items() if ("instance", "exporter-0:9863") in labels
            and name == "up"]
    assert kept and all(v == 1 for v in kept[0])


def _expand(notation: str) -> list[float | str | None]:
    """promtool's expansion of its values notation (what the notation must round-trip through)."""
    out: list[float | str | None] = []
    for item in notation.split():
        if item == STALE:
            out.append(STALE)
        elif item.startswith("_"):
            out += [None] * (int(item[2:]) if "x" in item else 1)
        elif match := re.fullmatch(r"(-?[\d.]+)(?:([+-])([\d.]+))?x(\d+)", item):
            start, sign, step, count = match.groups()
            delta = float(step or 0) * (-1 if sign == "-" else 1)
            out += [float(start) + k * delta for k in range(int(count) + 1)]
        else:
            out.append(float(item))
    return out


def test_values_notation() -> None:
    assert values_notation([1, 1, 1, None, None, STALE, 2, 4, 6, 5, None]) == "1x2 _x2 stale 2+2x2 5"
    assert values_notation([9, 8, 7, 7]) == "9-1x2 7"
    rng = random.Random(7)
    for _ in range(200):
        values = [rng.choice([None, STALE, rng.randint(0, 3), rng.randint(0, 3) * 0.25]) for _ in range(rng.randint(0, 30))]
        while values and values[-1] is None:
            values.pop()
        assert _expand(values_notation(values)) == values, values


def test_report_parser_reads_firing_alerts_and_rejects_anything_else() -> None:
    report = """Unit Testing:  x.yaml
  FAILED:
    name: drain,
    alertname: AzureStandbyPoolDepleted, time: 1h43m,
        exp:[],
        got:[
            0:
              Labels:{alertname="AzureStandbyPoolDepleted", pool="cg-drain", severity="critical"}
              Annotations:{description="a, b", summary="c"}
            ]
"""
    assert parse_report(report) == {"drain": [(103, {"alertname": "AzureStandbyPoolDepleted", "pool": "cg-drain",
                                                     "severity": "critical"})]}
    with pytest.raises(ValueError):
        parse_report(report + "  could not load rules\n")
    with pytest.raises(ValueError):
        parse_report(report.replace("1h43m", "1h43m30s"))
