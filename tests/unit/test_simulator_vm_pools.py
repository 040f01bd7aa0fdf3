"""Simulated VM pools the way 2025-10-01 and 2026-04-01 describe them: Mix pools, postProvisioningDelay."""

from __future__ import annotations

from collections import Counter

import pytest

from exporter.simulator import Simulator
from exporter.simulator.entities import VirtualMachinePool
from exporter.simulator.shapes import iso8601_duration, virtual_machine_pool

SUB, RG = "11111111-2222-3333-4444-555555555555", "rg-vm"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _states(pool: VirtualMachinePool) -> Counter[str]:
    return Counter(vm.state for vm in pool.members.values())


def test_a_mix_pool_keeps_its_distribution_through_claims_and_refills() -> None:
    clock = Clock()
    sim = Simulator(clock=clock, create_seconds=(3.0, 3.0))
    pool = sim.add_virtual_machine_pool(SUB, RG, "mix", max_ready_capacity=10, virtual_machine_state="Mix",
                                        state_distribution={"Running": 30, "Deallocated": 50, "Hibernated": 20})
    assert _states(pool) == {"Running": 3, "Deallocated": 5, "Hibernated": 2}
    sim.claim(SUB, RG, "mix", 10)
    sim.tick()
    assert _states(pool) == {"Creating": 10}
    clock.now += 3.0
    sim.tick()
    assert _states(pool) == {"Starting": 3, "Deallocating": 5, "Hibernating": 2}
    clock.now += 2.0
    sim.tick()
    assert _states(pool) == {"Running": 3, "Deallocated": 5, "Hibernated": 2}


def test_post_provisioning_delay_lengthens_creation() -> None:
    clock = Clock()
    sim = Simulator(clock=clock, create_seconds=(3.0, 3.0))
    pool = sim.add_virtual_machine_pool(SUB, RG, "slow", max_ready_capacity=2, running=0, post_provisioning_delay=60)
    sim.tick()
    clock.now += 62.0
    sim.tick()
    assert _states(pool) == {"Creating": 2}
    clock.now += 1.0
    sim.tick()
    assert _states(pool) == {"Deallocating": 2}


@pytest.mark.parametrize(("state", "distribution"), [
    ("Mix", None), ("Mix", {"Running": 50}), ("Mix", {"Running": 50, "Stopped": 50}), ("Running", {"Running": 100}),
    ("Starting", None),
])
def test_vm_states_are_checked(state: str, distribution: dict[str, int] | None) -> None:
    with pytest.raises(ValueError):
        Simulator().add_virtual_machine_pool(SUB, RG, "bad", virtual_machine_state=state, state_distribution=distribution)


def test_pool_body_by_api_version() -> None:
    sim = Simulator()
    pool = sim.add_virtual_machine_pool(SUB, RG, "mix", max_ready_capacity=4, virtual_machine_state="Mix",
                                        state_distribution={"Running": 20, "Deallocated": 80},
                                        post_provisioning_delay=5400)
    newest = virtual_machine_pool(pool, "2026-04-01", sim.wall)["properties"]
    assert newest["vmStateDistribution"] == {"runningPercent": 20, "deallocatedPercent": 80, "hibernatedPercent": 0}
    assert newest["elasticityProfile"]["postProvisioningDelay"] == "PT1H30M"
    older = virtual_machine_pool(pool, "2025-10-01", sim.wall)["properties"]
    assert "vmStateDistribution" not in older and older["virtualMachineState"] == "Mix"
    assert "postProvisioningDelay" not in virtual_machine_pool(pool, "2025-03-01", sim.wall)["properties"]["elasticityProfile"]


@pytest.mark.parametrize(("seconds", "text"), [(0, "PT0S"), (2, "PT2S"), (120, "PT2M"), (3661, "PT1H1M1S")])
def test_iso8601_durations(seconds: int, text: str) -> None:
    assert iso8601_duration(seconds) == text
