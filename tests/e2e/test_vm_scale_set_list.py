"""VM pool members read through one paged list per scale set: fresh every cycle, per-VM instance views only as fallback."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from exporter.simulator import Fault, Simulator, SimulatorServer

from .conftest import SUB, ExporterProcess, pool_config

RG = "rg-vm"


def _config(server: SimulatorServer) -> dict[str, object]:
    config = pool_config(server)
    config["pools"] = [{"subscription_id": SUB, "resource_group": RG, "name": name, "kind": "virtual_machine"}
                       for name in ("web-pool", "batch-pool")]
    return config


def _reads(sim: Simulator, since: float) -> Counter[str]:
    return Counter(record.operation for record in list(sim.requests) if record.time > since and record.operation != "token")


def test_power_state_is_fresh_every_cycle_without_per_vm_reads(simulator: tuple[Simulator, SimulatorServer],
                                                              start_exporter: Callable[..., ExporterProcess]) -> None:
    sim, server = simulator
    web = sim.add_virtual_machine_pool(SUB, RG, "web-pool", max_ready_capacity=3, scale_set_name="web-vmss")
    sim.add_virtual_machine_pool(SUB, RG, "batch-pool", max_ready_capacity=2, scale_set_name="batch-vmss")
    sim.claim(SUB, RG, "web-pool", 1)  # now in service in web-vmss: listed with the scale set, not a member
    sim.set_refill(SUB, RG, "web-pool", False)
    exporter = start_exporter(_config(server), server)
    exporter.wait_for(lambda: exporter.value("azure_standby_pool_members_ready", pool="web-pool") == 2, what="web-pool members read")
    assert {labels["member"] for labels, _ in exporter.samples("azure_standby_pool_member_ready") if labels["pool"] == "web-pool"} \
        == {vm.name for vm in web.members.values()}

    with sim.lock:  # a pooled VM starts on its own: no list state changes, only its power state
        vm = next(iter(web.members.values()))
        vm.state = "Starting"
    mark = sim.clock()
    exporter.wait_for(lambda: exporter.value("azure_standby_pool_member_ready", member=vm.name) == 0, what="the change seen")
    cycles = _reads(sim, mark)["runtime_view"] // 2
    assert cycles <= 3  # seen within a few 1 s cycles, not after polling.member_refresh (10 min)
    steady = _reads(sim, mark)
    # per cycle: a runtime view and a standbyVirtualMachines list per pool, one VM list per scale set, no instance view
    assert steady["vm_instance_view"] == 0
    assert steady["vm_scale_set_list"] == steady["vm_list"] == steady["runtime_view"]
    remaining = exporter.value("azure_standby_pool_arm_ratelimit_remaining_resource", subscription_id=SUB,
                               policy="Microsoft.Compute/HighCostGet3Min")
    assert remaining is not None and 0 <= remaining < 190  # Compute's own header, counted down by the lists


def test_members_the_list_does_not_cover_fall_back_to_their_instance_view(simulator: tuple[Simulator, SimulatorServer],
                                                                         start_exporter: Callable[..., ExporterProcess]) -> None:
    sim, server = simulator
    sim.add_virtual_machine_pool(SUB, RG, "web-pool", max_ready_capacity=3, scale_set_name="web-vmss")
    sim.add_virtual_machine_pool(SUB, RG, "batch-pool", max_ready_capacity=2, scale_set_name="batch-vmss")
    sim.faults.add(Fault(match="/providers/microsoft.compute/virtualmachines$", status=500))  # every scale-set list fails
    exporter = start_exporter(_config(server), server)
    exporter.wait_for(lambda: exporter.value("azure_standby_pool_members_ready", pool="web-pool") == 3
                      and exporter.value("azure_standby_pool_members_ready", pool="batch-pool") == 2, what="members via fallback")
    reads = _reads(sim, float("-inf"))
    assert reads["vm_instance_view"] >= 5  # every member read on its own
    assert exporter.value("azure_standby_pool_members_up", pool="web-pool") == 1
    assert exporter.value("azure_standby_pool_arm_requests_total", subscription_id=SUB, operation="vm_scale_set_list", code="500") > 0
