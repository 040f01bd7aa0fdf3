"""The real exporter against the simulator: what the depletion alerts need beyond instance counts. Dynamic
sizing per api-version, Azure's recent demand in both forecastInfo shapes, and the shard metrics of two
replicas sharing the pools (kube-state-metrics style)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from exporter.simulator import Simulator, SimulatorServer, shapes
from tests.e2e.conftest import SUB, ExporterProcess

pytestmark = pytest.mark.e2e

POOLS = [  # (resource group, name, kind, dynamic sizing, forecast)
    ("rg-dyn", "cg-dynamic", "container_group", True, True),
    ("rg-dyn", "vm-dynamic", "virtual_machine", True, True),
    ("rg-fix", "cg-fixed", "container_group", False, True),
    ("rg-fix", "vm-fixed", "virtual_machine", False, False),
]


@pytest.fixture
def world(simulator: tuple[Simulator, SimulatorServer]) -> tuple[Simulator, SimulatorServer, dict[str, Any]]:
    sim, server = simulator
    sim.claim_probability = 0.0
    added = {}
    for rg, name, kind, dynamic, forecast in POOLS:
        add = sim.add_container_group_pool if kind == "container_group" else sim.add_virtual_machine_pool
        added[name] = add(SUB, rg, name, max_ready_capacity=20, dynamic_sizing=dynamic, forecast=forecast)
    return sim, server, added


def config(server: SimulatorServer, api_version: str) -> dict[str, Any]:
    return {
        "azure": {"resource_manager_endpoint": server.url, "api_versions": {"standby_pool": api_version}},
        "polling": {"interval": "1s", "timeout": "2s", "stale_after": "1m"},
        "pools": [{"subscription_id": SUB, "resource_group": rg, "name": name, "kind": kind} for rg, name, kind, _, _ in POOLS],
    }


def _all_up(exporter: ExporterProcess) -> bool:
    return sorted(labels["pool"] for labels, value in exporter.samples("azure_standby_pool_up") if value == 1) == sorted(
        name for _, name, _, _, _ in POOLS)


def test_dynamic_sizing_and_recent_demand(world: tuple[Simulator, SimulatorServer, dict[str, Any]],
                                          start_exporter: Callable[..., ExporterProcess]) -> None:
    sim, server, added = world
    modern = start_exporter(config(server, "2025-10-01"), server)
    older = start_exporter(config(server, "2025-03-01"), server)
    for exporter in (modern, older):
        exporter.wait_for(lambda e=exporter: _all_up(e), what="every pool up")

    def dynamic(exporter: ExporterProcess) -> dict[str, float]:
        return {labels["pool"]: value for labels, value in exporter.samples("azure_standby_pool_dynamic_sizing_enabled")}

    assert dynamic(modern) == {"cg-dynamic": 1, "vm-dynamic": 1, "cg-fixed": 0, "vm-fixed": 0}
    assert dynamic(older) == dict.fromkeys(dynamic(modern), 0), "no dynamicSizing before 2025-10-01: 0"

    # The simulator serves the history as Microsoft's REST examples do (camelCase, a JSON string inside the JSON
    # string), chronologically: step 1 must be its last element. The PascalCase array shape of Microsoft's
    # prediction article is read by the same parser (tests/unit/test_model.py, vm_runtime_view_2026-04-01_forecast.json).
    styles = set()

    def history(name: str, wall: float) -> list[int]:
        info = json.loads(shapes.prediction(added[name], wall)["forecastInfo"])
        served = info.get("instancesRequestedCount_recentHistory") or info.get("InstancesRequestedCountRecentHistory")
        styles.add(type(served).__name__)
        return json.loads(served) if isinstance(served, str) else served

    for name in ("cg-dynamic", "vm-dynamic", "cg-fixed"):
        published = {int(labels["step"]): value for labels, value in modern.samples("azure_standby_pool_recent_instances_requested")
                     if labels["pool"] == name}
        now = sim.wall(sim.clock())  # the last poll may have read the hour before, at an hour's turn
        assert [published[step] for step in sorted(published)] in (
            list(reversed(history(name, now))), list(reversed(history(name, now - 10)))), name
    assert styles == {"str"}, "the simulator serves Microsoft's shape: the history a JSON string"
    assert not [1 for labels, _ in modern.samples("azure_standby_pool_recent_instances_requested") if labels["pool"] == "vm-fixed"]


def test_two_shards_share_the_pools_and_say_which_they_are(world: tuple[Simulator, SimulatorServer, dict[str, Any]],
                                                          start_exporter: Callable[..., ExporterProcess]) -> None:
    _, server, _ = world
    replicas = [start_exporter(config(server, "2025-10-01"), server, "--shard.count=2", f"--shard.index={index}")
                for index in (0, 1)]
    polled: list[set[str]] = []
    for index, replica in enumerate(replicas):
        replica.wait_for(lambda r=replica: bool(r.samples("azure_standby_pool_up")) and r.value(
            "azure_standby_pool_exporter_total_shards") == 2, what="the first cycle")
        assert replica.samples("azure_standby_pool_exporter_shard_ordinal") == [({"shard_ordinal": str(index)}, index)]
        polled.append({labels["pool"] for labels, _ in replica.samples("azure_standby_pool_up")})
    assert polled[0] | polled[1] == {name for _, name, _, _, _ in POOLS} and not polled[0] & polled[1]
