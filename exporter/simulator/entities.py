"""The simulated resources: standby pools and their members (plain data, no behaviour beyond counting)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import ClassVar

CONTAINER_GROUP = "container_group"
VIRTUAL_MACHINE = "virtual_machine"
POOL_RESOURCE_TYPES = {CONTAINER_GROUP: "standbyContainerGroupPools", VIRTUAL_MACHINE: "standbyVirtualMachinePools"}
CONTAINER_GROUP_STATES = ("Creating", "Running", "Deleting")
VIRTUAL_MACHINE_STATES = (
    "Running", "Creating", "Starting", "Deleting", "Deallocated", "Deallocating", "Hibernated", "Hibernating",
)
# Pool virtual machine state -> the transitional state a new VM passes through after Creating.
VM_TRANSITION = {"Running": "Starting", "Deallocated": "Deallocating", "Hibernated": "Hibernating"}
MIX = "Mix"  # a pool keeping VMs in several of the states above, shares set by vmStateDistribution (2026-04-01)


def key(*parts: str) -> tuple[str, ...]:
    """Case-insensitive lookup key, as ARM compares names."""
    return tuple(part.lower() for part in parts)


@dataclass(eq=False, kw_only=True)
class Pool:
    """What both standby pool kinds share."""

    KIND: ClassVar[str]
    subscription_id: str
    resource_group: str
    name: str
    location: str
    max_ready_capacity: int
    zones: list[str] | None
    health: str | None
    forecast: bool
    dynamic_sizing: bool  # elasticityProfile.dynamicSizing.enabled: the ready target follows the forecast
    refill: bool
    tags: dict[str, str] | None
    created_at: float
    provisioning_state: str = "Succeeded"
    flaky_health: bool = False
    recover_at: float | None = None

    def zone_counts(self) -> dict[str | None, Counter[str]]:
        """Member counts by zone (None when not zonal) and runtime-view state."""
        raise NotImplementedError

    def least_used_zone(self) -> str | None:
        """The zone a new member goes to: the one with fewest live members."""
        if not self.zones:
            return None
        counts = self.zone_counts()
        return min(self.zones, key=lambda zone: sum(counts.get(zone, Counter()).values()))

    @property
    def resource_type(self) -> str:
        """ARM resource type below Microsoft.StandbyPool."""
        return POOL_RESOURCE_TYPES[self.KIND]

    @property
    def degraded(self) -> bool:
        """True while the health code says degraded: the pool creates no instances."""
        return self.health is not None and "degraded" in self.health.lower()


@dataclass(eq=False, kw_only=True)
class ContainerGroup:
    """A container group; a pool member when ``pool`` is set."""

    subscription_id: str
    resource_group: str
    name: str
    location: str
    created_at: float
    ready_at: float
    pool: ContainerGroupPool | None = None
    zone: str | None = None
    phase: str = "Creating"  # members: Creating | Running | Deleting
    instance_state: str = "Running"  # non-members: instanceView.state
    tags: dict[str, str] | None = None
    gone_at: float | None = None
    overrides: dict[str, str] = field(default_factory=dict)


@dataclass(eq=False, kw_only=True)
class ContainerGroupPool(Pool):
    """A standby container group pool."""

    KIND = CONTAINER_GROUP
    members: dict[str, ContainerGroup] = field(default_factory=dict)

    def zone_counts(self) -> dict[str | None, Counter[str]]:
        counts: dict[str | None, Counter[str]] = {}
        for member in self.members.values():
            counts.setdefault(member.zone, Counter())[member.phase] += 1
        return counts


@dataclass(eq=False, kw_only=True)
class VirtualMachine:
    """A virtual machine created by a standby pool; ``pool`` is None once claimed."""

    subscription_id: str
    resource_group: str
    name: str
    location: str
    created_at: float
    state: str = "Creating"  # one of VIRTUAL_MACHINE_STATES
    state_until: float | None = None  # when a Creating or transitional state ends
    pool: VirtualMachinePool | None = None
    zone: str | None = None
    claimed_at: float | None = None
    target_state: str = "Deallocated"  # the VM_TRANSITION key this VM settles in while it waits in the pool
    scale_set_name: str = ""  # the pool's attached scale set: a pooled VM belongs to it from creation


@dataclass(eq=False, kw_only=True)
class VirtualMachinePool(Pool):
    """A standby virtual machine pool attached to a scale set."""

    KIND = VIRTUAL_MACHINE
    min_ready_capacity: int | None
    virtual_machine_state: str  # a VM_TRANSITION key, or MIX
    scale_set_name: str
    state_distribution: dict[str, int] | None = None  # MIX pools: percent of ready VMs per VM_TRANSITION key
    post_provisioning_delay: int | None = None  # seconds a new VM waits after provisioning (2025-10-01+)
    members: dict[str, VirtualMachine] = field(default_factory=dict)

    def next_target_state(self) -> str:
        """The state a new VM settles in: the pool's, or for MIX the one furthest below its share."""
        if self.virtual_machine_state != MIX:
            return self.virtual_machine_state
        shares = self.state_distribution or {}
        counts = Counter(vm.target_state for vm in self.members.values() if vm.state != "Deleting")
        total = sum(counts.values()) + 1
        return max(shares, key=lambda state: (shares[state] * total / 100 - counts[state], shares[state]))

    def zone_counts(self) -> dict[str | None, Counter[str]]:
        counts: dict[str | None, Counter[str]] = {}
        for member in self.members.values():
            counts.setdefault(member.zone, Counter())[member.state] += 1
        return counts
