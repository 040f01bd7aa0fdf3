"""A VM-pool estate: ARM reads and wall time per cycle of the exporter's own Poller, against the reads formula.

Every pool attaches a scale set of its own, so a cycle reads per pool its runtime view, its
``standbyVirtualMachines`` list and its scale set's VM list (instance views in bulk), plus the pool lists
of each resource group when they are due; no VM is read on its own while the scale-set list covers it.
The baseline, run side by side on the same world, refuses the scale-set lists (403), so the exporter falls
back to one instance-view read per due VM, as it read every VM before the scale-set list.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from exporter.config import Settings, load_settings

from .cycles import Cycle, World, make_poller, timed_cycle
from .procs import SimulatorProcess


@dataclass
class VmResult:
    world: World
    concurrency: int
    latency: float
    cycles: list[Cycle] = field(default_factory=list)
    baseline: list[Cycle] = field(default_factory=list)  # the same cycles reading every due VM on its own

    def per_pool_pages(self) -> int:
        """Pages of one pool's standbyVirtualMachines list, and of its scale set's VM list."""
        return max(1, math.ceil(self.world.members / self.world.page_size))

    def formula(self, pool_lists_due: bool) -> int:
        """runtime views + standbyVirtualMachines pages + scale-set list pages (+ pool list pages when due)."""
        world = self.world
        return world.pools * (1 + 2 * self.per_pool_pages()) + (world.pool_list_pages() if pool_lists_due else 0)


def run_vm_cycles(world: World, *, latency: float, concurrency: int, steady_cycles: int = 2, log: Any = print) -> VmResult:
    result = VmResult(world, concurrency, latency)
    log(f"[vm] simulator: {world.pools} VM pools x {world.members} VMs in {world.resource_groups} resource groups, "
        f"latency {latency * 1000:g} ms")
    with SimulatorProcess(pools=world.pools, members=world.members, resource_groups=world.resource_groups, latency=latency,
                          page_size=world.page_size, kind="virtual_machine") as sim:
        settings = load_settings({
            "azure": {"resource_manager_endpoint": sim.url, "max_reads_per_second": 0},
            "polling": {"interval": 60, "timeout": 30, "concurrency": concurrency, "stale_after": 300},
            "pools": [{"subscription_id": p.subscription_id, "resource_group": p.resource_group, "name": p.name, "kind": "virtual_machine"}
                      for p in world.layout],
        })
        result.baseline = _cycles(sim, settings, steady_cycles, "baseline (per-VM reads)", log)
        sim.clear_faults()
        result.cycles = _cycles(sim, settings, steady_cycles, "scale-set lists", log)
    return result


def _cycles(sim: SimulatorProcess, settings: Settings, steady_cycles: int, name: str, log: Any) -> list[Cycle]:
    """A cold and ``steady_cycles`` steady cycles of a fresh poller; the baseline refuses the scale-set lists first."""
    if name.startswith("baseline"):
        sim.add_fault(match="/providers/microsoft.compute/virtualmachines$", status=403)
    poller, client = make_poller(sim, settings, monotonic=time.monotonic)
    cycles = []
    try:
        for index in range(1 + steady_cycles):
            label = "cold" if index == 0 else f"steady{index}"
            cycle, _ = timed_cycle(label, sim, poller)
            cycles.append(cycle)
            log(f"[vm] {name}, {label}: {cycle.total} ARM reads in {cycle.wall:.2f} s ({dict(cycle.reads)})")
    finally:
        poller.stop()
        client.close()
    return cycles
