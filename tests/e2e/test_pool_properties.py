"""What the pool resource says, through the real exporter: zones, postProvisioningDelay, a Mix pool's shares."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from exporter.simulator import Simulator, SimulatorServer

from .conftest import SUB, ExporterProcess


def _config(server: SimulatorServer, api_version: str) -> dict[str, Any]:
    pools = [("rg-cg", "zonal", "container_group"), ("rg-vm", "mix", "virtual_machine"), ("rg-vm", "cold", "virtual_machine")]
    return {
        "azure": {"resource_manager_endpoint": server.url, "api_versions": {"standby_pool": api_version}},
        "polling": {"interval": "1s", "timeout": "2s", "stale_after": "1m"},
        "pools": [{"subscription_id": SUB, "resource_group": rg, "name": name, "kind": kind} for rg, name, kind in pools],
    }


@pytest.mark.parametrize("api_version", ["2025-03-01", "2025-10-01", "2026-04-01"])
def test_pool_properties_by_api_version(simulator: tuple[Simulator, SimulatorServer],
                                        start_exporter: Callable[..., ExporterProcess], api_version: str) -> None:
    sim, server = simulator
    sim.add_container_group_pool(SUB, "rg-cg", "zonal", max_ready_capacity=3, zones=["1", "2", "3"])
    sim.add_virtual_machine_pool(SUB, "rg-vm", "mix", max_ready_capacity=5, virtual_machine_state="Mix",
                                 state_distribution={"Running": 20, "Deallocated": 80}, post_provisioning_delay=120)
    sim.add_virtual_machine_pool(SUB, "rg-vm", "cold", max_ready_capacity=2, scale_set_name="cold-vmss")
    exporter = start_exporter(_config(server, api_version), server)
    exporter.wait_for(lambda: exporter.value("azure_standby_pool_up", pool="cold") == 1
                      and exporter.value("azure_standby_pool_up", pool="mix") == 1
                      and exporter.value("azure_standby_pool_up", pool="zonal") == 1, what="three pools up")

    assert exporter.value("azure_standby_pool_info", pool="zonal", zones="1,2,3") == 1
    assert exporter.value("azure_standby_pool_info", pool="mix", virtual_machine_state="Mix", zones="") == 1
    shares = {labels["state"]: value for labels, value in exporter.samples("azure_standby_pool_vm_state_distribution_ratio")
              if labels["pool"] == "mix"}
    delays = {labels["pool"]: value for labels, value in exporter.samples("azure_standby_pool_post_provisioning_delay_seconds")}
    assert shares == ({"Running": 0.2, "Deallocated": 0.8, "Hibernated": 0.0} if api_version >= "2026-04-01" else {})
    assert delays == ({"mix": 120.0} if api_version >= "2025-10-01" else {})  # "cold" has no delay set
    assert not any(labels["pool"] != "mix" for labels, _ in exporter.samples("azure_standby_pool_vm_state_distribution_ratio"))
    ready = exporter.value("azure_standby_pool_members_ready", pool="mix")
    assert ready == 5  # the Mix pool's VMs, Running and Deallocated alike, are ready
