"""VM pools, discovery, zones, health and forecasts through the real exporter process and azure-identity."""

from __future__ import annotations

import pytest

from exporter.simulator import Simulator, SimulatorServer
from tests.conftest import promtool_check_metrics
from tests.e2e.conftest import SUB, ExporterProcess

pytestmark = pytest.mark.e2e


def discovery_config(server: SimulatorServer, **discovery: object) -> dict[str, object]:
    return {
        "azure": {"resource_manager_endpoint": server.url, "api_versions": {"standby_pool": "2025-10-01"}},
        "polling": {"interval": "1s", "timeout": "2s", "stale_after": "1m"},
        "discovery": {"subscriptions": [SUB], "interval": "1s", **discovery},
    }


def pools_in(exporter: ExporterProcess) -> set[tuple[str, str]]:
    return {(labels["pool"], labels["pool_kind"]) for labels, _ in exporter.samples("azure_standby_pool_up")}


def test_discovers_both_kinds_and_follows_the_estate(simulator: tuple[Simulator, SimulatorServer], start_exporter, promtool: str) -> None:
    sim, server = simulator
    sim.add_container_group_pool(SUB, "rg-web", "web", max_ready_capacity=3, zones=["1", "2"], forecast=True)
    sim.add_virtual_machine_pool(SUB, "rg-vm", "vms", max_ready_capacity=2, min_ready_capacity=1,
                                 virtual_machine_state="Deallocated", scale_set_name="vmss-web", health="HealthState/degraded")
    sim.add_container_group_pool(SUB, "rg-web", "skipme", max_ready_capacity=1)
    exporter = start_exporter(discovery_config(server, exclude="skip.*"), server)
    exporter.wait_for(lambda: pools_in(exporter) == {("web", "container_group"), ("vms", "virtual_machine")}, what="both pools discovered")
    exporter.wait_for(lambda: exporter.value("azure_standby_pool_members_ready", pool="vms") == 2, what="VM members read")

    # zones: one series per zone and state
    zones = {labels["availability_zone"] for labels, _ in exporter.samples("azure_standby_pool_instances") if labels["pool"] == "web"}
    assert zones == {"1", "2"}
    running = sum(v for labels, v in exporter.samples("azure_standby_pool_instances") if labels["pool"] == "web" and labels["state"] == "Running")
    assert running == 3
    # VM pool: every VM state, capacity, info labels, members in pool, health
    vm_states = {labels["state"]: v for labels, v in exporter.samples("azure_standby_pool_instances") if labels["pool"] == "vms"}
    assert set(vm_states) == {"Running", "Creating", "Starting", "Deleting", "Deallocated", "Deallocating", "Hibernated", "Hibernating"}
    assert vm_states["Deallocated"] == 2
    assert exporter.value("azure_standby_pool_min_ready_capacity", pool="vms") == 1
    assert exporter.value("azure_standby_pool_min_ready_capacity", pool="web") is None
    assert exporter.value("azure_standby_pool_info", pool="vms", virtual_machine_state="Deallocated", scale_set="vmss-web") == 1
    in_pool = [v for labels, v in exporter.samples("azure_standby_pool_member_in_pool") if labels["pool"] == "vms"]
    assert in_pool == [1, 1]
    assert exporter.value("azure_standby_pool_health_state", pool="vms", state="degraded") == 1
    assert exporter.value("azure_standby_pool_health_state", pool="web", state="healthy") == 1
    # forecasts
    steps = {labels["step"]: v for labels, v in exporter.samples("azure_standby_pool_forecast_instances_requested") if labels["pool"] == "web"}
    assert sorted(steps, key=int) == [str(i) for i in range(12)]
    assert exporter.value("azure_standby_pool_forecast_interval_seconds", pool="web") == 3600
    assert 0 < exporter.value("azure_standby_pool_forecast_accuracy_ratio", pool="web") <= 1
    assert exporter.value("azure_standby_pool_forecast_start_timestamp_seconds", pool="web") > 1.7e9
    assert exporter.value("azure_standby_pool_discovered_pools", subscription_id=SUB, pool_kind="virtual_machine") == 1
    assert exporter.value("azure_standby_pool_discovered_pools", subscription_id=SUB, pool_kind="container_group") == 1
    result = promtool_check_metrics(promtool, exporter.metrics_text())
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr

    # a VM handed out leaves the pool; a pool that appears is polled, one that disappears vanishes
    sim.claim(SUB, "rg-vm", "vms", 1)
    sim.add_virtual_machine_pool(SUB, "rg-vm", "vms-two", max_ready_capacity=1)
    sim.delete_pool(SUB, "rg-web", "web")
    exporter.wait_for(lambda: pools_in(exporter) == {("vms", "virtual_machine"), ("vms-two", "virtual_machine")}, what="estate change followed")
    assert not [labels for labels, _ in exporter.samples("azure_standby_pool_instances") if labels["pool"] == "web"]  # no stale series
    exporter.wait_for(lambda: exporter.value("azure_standby_pool_members_ready", pool="vms") == 1, what="claimed VM gone")


def test_configured_and_discovered_pool_is_polled_once(simulator: tuple[Simulator, SimulatorServer], start_exporter) -> None:
    sim, server = simulator
    sim.add_container_group_pool(SUB, "rg-web", "web", max_ready_capacity=1)
    config = discovery_config(server)
    config["pools"] = [{"subscription_id": SUB, "resource_group": "RG-WEB", "name": "WEB"}]
    exporter = start_exporter(config, server)
    exporter.wait_for(lambda: exporter.value("azure_standby_pool_up", pool="WEB") == 1, what="pool up")
    sim.reset_requests()
    exporter.wait_for(lambda: sum(r.operation == "runtime_view" for r in sim.requests) >= 3, what="three cycles")
    cycles = sum(r.operation == "pool_list" and "standbycontainergrouppools" in r.path.lower() for r in sim.requests)
    runtime_views = sum(r.operation == "runtime_view" for r in sim.requests)
    assert runtime_views <= cycles + 2  # one runtime view per cycle, not two
    assert [labels["pool"] for labels, _ in exporter.samples("azure_standby_pool_up")] == ["WEB"]
