"""The demo world: a few pools whose numbers visibly change every few seconds."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .world import Simulator

DEMO_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
DEMO_RESOURCE_GROUPS = ("rg-standby-demo", "rg-batch-demo")


def build_demo(cls: type[Simulator], seed: int) -> Simulator:
    """Build the demo world with ``cls`` (Simulator)."""
    sim = cls(seed=seed, create_seconds=(2.0, 6.0), claim_probability=0.3, request_log_limit=10_000)
    web, batch = DEMO_RESOURCE_GROUPS
    sim.add_container_group_pool(DEMO_SUBSCRIPTION, web, "web-pool", max_ready_capacity=12, zones=["1", "2", "3"],
                                 tags={"app": "web"})
    sim.add_container_group_pool(DEMO_SUBSCRIPTION, web, "api-pool", max_ready_capacity=8, running=5, creating=3,
                                 forecast=True, tags={"app": "api"})
    flaky = sim.add_container_group_pool(DEMO_SUBSCRIPTION, batch, "batch-pool", location="northeurope",
                                         max_ready_capacity=6, running=4)
    flaky.flaky_health = True
    sim.add_virtual_machine_pool(DEMO_SUBSCRIPTION, web, "vm-pool-deallocated", max_ready_capacity=5,
                                 min_ready_capacity=2, forecast=True, scale_set_name="web-vmss")
    sim.add_virtual_machine_pool(DEMO_SUBSCRIPTION, batch, "vm-pool-hot", location="northeurope",
                                 max_ready_capacity=3, virtual_machine_state="Running", zones=["1", "2"],
                                 scale_set_name="batch-vmss")
    sim.add_container_group(DEMO_SUBSCRIPTION, web, "legacy-frontend")
    sim.add_container_group(DEMO_SUBSCRIPTION, batch, "nightly-report", state="Succeeded")
    return sim
