"""The metric catalogue is the one list: the docs, the contract fixture and the live registry follow it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.collector import CATALOGUE, PREFIX, MetricType

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("generate_metrics", REPO / "docs" / "generate_metrics.py")
assert spec is not None and spec.loader is not None
generate_metrics = importlib.util.module_from_spec(spec)
spec.loader.exec_module(generate_metrics)


@pytest.mark.parametrize("path", sorted(generate_metrics.OUTPUTS, key=str), ids=lambda path: path.name)
def test_generated_files_follow_the_catalogue(path: Path) -> None:
    assert path.read_text(encoding="utf-8") == generate_metrics.OUTPUTS[path](), (
        f"{path.relative_to(REPO)} differs from the catalogue: run `make generate` (python docs/generate_metrics.py)"
    )


def test_catalogue_names_follow_prometheus_conventions() -> None:
    names = [family.full_name for family in CATALOGUE]
    assert len(names) == len(set(names)), "a family is declared twice"
    for family in CATALOGUE:
        assert family.full_name.startswith(PREFIX) and family.full_name == family.full_name.lower()
        assert not family.name.endswith("_total"), f"{family.name}: counters get _total when exposed, not in the catalogue"
        assert family.help.endswith("."), family.name
        assert len(set(family.labels)) == len(family.labels), family.name
        assert family.type in (MetricType.GAUGE, MetricType.COUNTER)


def test_live_families_are_declared_where_they_are_kept() -> None:
    """A family the catalogue marks as kept by another module appears in a live exporter's /metrics (checked
    end to end by tests/assets/test_prometheus_integration.py); here: it has no generator and names its owner."""
    live = [family for family in CATALOGUE if family.generate is None]
    assert live, "the reload and web families are declared in the catalogue"
    for family in live:
        assert family.owner.startswith("exporter.") and family.owner != "exporter.collector", family.name


def test_rendered_snapshot_families_are_exactly_the_generated_ones() -> None:
    from tests.unit.test_collector import healthy_zonal, render, snapshot, stale_failed

    rendered = {family.name for family in text_string_to_metric_families(render(snapshot(healthy_zonal(), stale_failed())))}
    declared = {family.full_name for family in CATALOGUE if family.generate is not None}
    assert rendered == declared
