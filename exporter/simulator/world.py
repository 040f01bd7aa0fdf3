"""The simulated Azure world: pools, members, their lifecycle, and the knobs tests turn."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypedDict

from . import shapes
from .access import ComputeReadLimits, ReadThrottle, TokenIssuer
from .entities import (
    MIX,
    POOL_RESOURCE_TYPES,
    VM_TRANSITION,
    ContainerGroup,
    ContainerGroupPool,
    Pool,
    VirtualMachine,
    VirtualMachinePool,
    key,
)
from .faults import FaultSet

HEALTHY = "HealthState/healthy"
DEGRADED = "HealthState/degraded"
DEGRADED_PAUSE_SECONDS = 30.0  # a degraded pool pauses creating instances this long (Azure docs)
FLAKY_DEGRADE_PER_SECOND = 1 / 120  # chance per second that a flaky pool turns degraded
CLAIMED_VM_RETENTION = 600.0  # claimed VMs stay visible (isVMInStandbyPool false) this long


class _PoolFields(TypedDict):
    subscription_id: str
    resource_group: str
    name: str
    location: str
    max_ready_capacity: int
    zones: list[str] | None
    health: str | None
    forecast: bool
    dynamic_sizing: bool
    refill: bool
    tags: dict[str, str] | None
    created_at: float


@dataclass(frozen=True)
class RequestRecord:
    """One request the simulator answered (status 0: connection reset)."""

    time: float
    wall_time: float
    method: str
    path: str
    query: dict[str, str]
    subscription_id: str | None
    status: int
    operation: str


class Simulator:
    """State and lifecycle of simulated standby pools; thread-safe, time taken from ``clock``."""

    def __init__(
        self,
        seed: int = 1,
        page_size: int = 50,
        latency: float = 0.0,
        read_bucket: int | None = None,  # enforce ARM's read bucket with this capacity (opt-in; headers count it always)
        read_refill_per_second: float = 25.0,
        create_seconds: tuple[float, float] = (3.0, 8.0),
        claim_probability: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        deleting_seconds: float = 2.0,
        lowercase_states: float = 0.05,
        request_log_limit: int | None = None,
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self.page_size = page_size
        self.latency = latency
        self.create_seconds = create_seconds
        self.claim_probability = claim_probability
        self.deleting_seconds = deleting_seconds
        self.lowercase_states = lowercase_states
        self.clock = clock
        self.lock = threading.RLock()  # guards all world state below
        self.faults = FaultSet()
        self.tokens = TokenIssuer(clock)
        self.throttle = ReadThrottle(read_bucket, read_refill_per_second, clock)
        self.compute_limits = ComputeReadLimits(clock)
        self.requests: list[RequestRecord] = []
        # Bodies served as they are: (lower-cased path, api-version) -> JSON bytes, e.g. Microsoft's REST examples.
        self.verbatim: dict[tuple[str, str], bytes] = {}
        self.request_log_limit = request_log_limit  # keep only the newest this many records (None: all)
        self._requests_lock = threading.Lock()
        self._rng = random.Random(seed)
        self._noise = random.Random(f"{seed}/noise")
        self._wall_offset = time.time() - clock()
        self._last_tick = clock()
        self._pools: dict[tuple[str, ...], Pool] = {}
        self._container_groups: dict[tuple[str, ...], ContainerGroup] = {}
        # The same container groups by (subscription, resource group): a list page reads one group, not all.
        self._groups_by_resource_group: dict[tuple[str, ...], dict[tuple[str, ...], ContainerGroup]] = {}
        self._virtual_machines: dict[tuple[str, ...], VirtualMachine] = {}
        self._resource_groups: dict[tuple[str, ...], str] = {}

    @classmethod
    def demo(cls, seed: int = 1) -> Simulator:
        """A ready demo world whose numbers change every few seconds."""
        from .demo_world import build_demo

        return build_demo(cls, seed)

    # ---- building the world -------------------------------------------------------------------

    def serve_verbatim(self, path: str, api_version: str, body: bytes) -> None:
        """Answer GET ``path`` (any casing) at ``api_version`` with ``body`` as it is, whatever the world holds."""
        self.verbatim[(path.lower(), api_version)] = body

    def add_container_group_pool(
        self,
        subscription_id: str,
        resource_group: str,
        name: str,
        location: str = "westeurope",
        max_ready_capacity: int = 10,
        running: int | None = None,
        creating: int = 0,
        zones: list[str] | None = None,
        health: str | None = HEALTHY,
        forecast: bool = False,
        provisioning_state: str = "Succeeded",
        refill: bool = True,
        tags: dict[str, str] | None = None,
        dynamic_sizing: bool = False,
    ) -> ContainerGroupPool:
        """Add a container group pool with ``running`` ready members (None: its ready target) and ``creating`` new ones.

        ``dynamic_sizing``: served from api-version 2025-10-01 on; the pool then has a forecast, and Azure
        refills it only up to the forecast's demand for the current hour (below max ready capacity).
        """
        with self.lock:
            pool = ContainerGroupPool(
                **self._pool_fields(subscription_id, resource_group, name, location, max_ready_capacity,
                                    zones, health, forecast, refill, tags, dynamic_sizing),
                provisioning_state=provisioning_state,
            )
            self._add_pool(pool)
            now = self.clock()
            for _ in range(shapes.ready_target(pool, self.wall(now)) if running is None else running):
                self._new_container_group(pool, now, ready=True)
            for _ in range(creating):
                self._new_container_group(pool, now)
            return pool

    def add_container_group(
        self, subscription_id: str, resource_group: str, name: str, state: str = "Running",
        location: str = "westeurope",
    ) -> ContainerGroup:
        """Add a container group that belongs to no pool, with instanceView.state ``state``."""
        with self.lock:
            self._register_resource_group(subscription_id, resource_group)
            now = self.clock()
            group_key = key(subscription_id, resource_group, name)
            if group_key in self._container_groups:
                raise ValueError(f"container group {resource_group}/{name} already exists")
            group = ContainerGroup(
                subscription_id=subscription_id.lower(), resource_group=resource_group, name=name,
                location=location, created_at=now - 3600.0, ready_at=now - 3590.0, phase="Running",
                instance_state=state,
            )
            self._store_group(group_key, group)
            return group

    def add_virtual_machine_pool(
        self,
        subscription_id: str,
        resource_group: str,
        name: str,
        location: str = "westeurope",
        max_ready_capacity: int = 5,
        min_ready_capacity: int | None = None,
        virtual_machine_state: str = "Deallocated",
        running: int | None = None,
        zones: list[str] | None = None,
        health: str | None = HEALTHY,
        forecast: bool = False,
        scale_set_name: str = "myScaleSet",
        refill: bool = True,
        tags: dict[str, str] | None = None,
        dynamic_sizing: bool = False,
        state_distribution: dict[str, int] | None = None,
        post_provisioning_delay: int | None = None,
    ) -> VirtualMachinePool:
        """Add a VM pool with ``running`` ready VMs (in ``virtual_machine_state``; None: full); ``dynamic_sizing`` as
        for :meth:`add_container_group_pool`.

        A ``Mix`` pool needs ``state_distribution``: percent per kept state (Running, Deallocated, Hibernated),
        summing to 100. ``post_provisioning_delay`` (seconds) lengthens every new VM's creation.
        """
        _check_vm_states(virtual_machine_state, state_distribution)
        with self.lock:
            pool = VirtualMachinePool(
                **self._pool_fields(subscription_id, resource_group, name, location, max_ready_capacity,
                                    zones, health, forecast, refill, tags, dynamic_sizing),
                min_ready_capacity=min_ready_capacity,
                virtual_machine_state=virtual_machine_state,
                scale_set_name=scale_set_name,
                state_distribution=dict(state_distribution) if state_distribution else None,
                post_provisioning_delay=post_provisioning_delay,
            )
            self._add_pool(pool)
            now = self.clock()
            for _ in range(shapes.ready_target(pool, self.wall(now)) if running is None else running):
                self._new_virtual_machine(pool, now, ready=True)
            return pool

    # ---- steering the world -------------------------------------------------------------------

    def tick(self) -> None:
        """Advance every lifecycle to ``clock()``: finish creations, random claims, refills, removals."""
        with self.lock:
            now = self.clock()
            elapsed = max(0.0, now - self._last_tick)
            self._last_tick = now
            for pool in list(self._pools.values()):
                self._advance_health(pool, now, elapsed)
                if isinstance(pool, ContainerGroupPool):
                    self._advance_container_groups(pool, now)
                elif isinstance(pool, VirtualMachinePool):
                    self._advance_virtual_machines(pool, now)
                if self.claim_probability > 0 and self._rng.random() < self.claim_probability:
                    self._claim(pool, self._rng.randint(1, 2), now)
                if pool.refill and not pool.degraded:
                    self._refill(pool, now)
            for vm_key, vm in list(self._virtual_machines.items()):
                if vm.claimed_at is not None and now - vm.claimed_at >= CLAIMED_VM_RETENTION:
                    del self._virtual_machines[vm_key]

    def claim(self, subscription_id: str, resource_group: str, pool_name: str, count: int = 1) -> list[str]:
        """Hand out up to ``count`` ready members (oldest first); return their names."""
        with self.lock:
            return self._claim(self._find_pool(subscription_id, resource_group, pool_name), count, self.clock())

    def deplete(self, subscription_id: str, resource_group: str, pool_name: str) -> None:
        """Hand out every member and stop refilling, so the pool reaches Running 0."""
        with self.lock:
            pool = self._find_pool(subscription_id, resource_group, pool_name)
            pool.refill = False
            self._claim(pool, None, self.clock(), ready_only=False)

    def set_refill(self, subscription_id: str, resource_group: str, pool_name: str, enabled: bool) -> None:
        """Turn refilling (creating members up to maxReadyCapacity on tick) on or off."""
        with self.lock:
            self._find_pool(subscription_id, resource_group, pool_name).refill = enabled

    def set_health(self, subscription_id: str, resource_group: str, pool_name: str, code: str | None) -> None:
        """Set the runtime view health code (None: no status); a degraded pool creates nothing."""
        with self.lock:
            pool = self._find_pool(subscription_id, resource_group, pool_name)
            pool.health, pool.recover_at = code, None

    def delete_pool(self, subscription_id: str, resource_group: str, pool_name: str) -> None:
        """Delete a pool and its members; its paths then answer 404."""
        with self.lock:
            pool = self._find_pool(subscription_id, resource_group, pool_name)
            del self._pools[(pool.KIND, *key(subscription_id, resource_group, pool_name))]
            if isinstance(pool, ContainerGroupPool):
                for group in pool.members.values():
                    self._drop_group(key(group.subscription_id, group.resource_group, group.name))
            elif isinstance(pool, VirtualMachinePool):
                for vm in pool.members.values():
                    del self._virtual_machines[key(vm.subscription_id, vm.resource_group, vm.name)]

    def set_member_state(
        self, subscription_id: str, resource_group: str, member_name: str,
        provisioning_state: str | None = None, state: str | None = None, container_state: str | None = None,
    ) -> None:
        """Override what a container group's GET reports (None leaves a field alone); counts are unaffected."""
        with self.lock:
            group = self._container_groups.get(key(subscription_id, resource_group, member_name))
            if group is None:
                raise KeyError(f"no container group {resource_group}/{member_name} in {subscription_id}")
            changes = {"provisioning_state": provisioning_state, "state": state, "container_state": container_state}
            group.overrides.update({name: value for name, value in changes.items() if value is not None})

    def revoke_tokens(self) -> None:
        """Invalidate every issued token: ARM answers 401 until a new one is fetched."""
        self.tokens.revoke_all()

    def record(self, record: RequestRecord) -> None:
        """Append to ``requests`` (thread-safe), dropping the oldest beyond ``request_log_limit``."""
        with self._requests_lock:
            self.requests.append(record)
            if self.request_log_limit is not None and len(self.requests) > self.request_log_limit:
                del self.requests[: len(self.requests) - self.request_log_limit]

    def reset_requests(self) -> None:
        """Forget recorded requests."""
        with self._requests_lock:
            self.requests.clear()

    # ---- reading the world (call with ``lock`` held) -----------------------------------------------

    def wall(self, at: float) -> float:
        """Epoch seconds for a simulator clock reading."""
        return self._wall_offset + at

    def subscription_known(self, subscription_id: str) -> bool:
        """True once anything was added to the subscription."""
        sub = subscription_id.lower()
        return any(rg_key[0] == sub for rg_key in self._resource_groups)

    def resource_group_known(self, subscription_id: str, resource_group: str) -> bool:
        """True once anything was added to the resource group."""
        return key(subscription_id, resource_group) in self._resource_groups

    def pool(self, kind: str, subscription_id: str, resource_group: str, name: str) -> Pool | None:
        """The pool of ``kind`` (CONTAINER_GROUP | VIRTUAL_MACHINE: "container_group" | "virtual_machine"), or None."""
        return self._pools.get((kind, *key(subscription_id, resource_group, name)))

    def pools(self, kind: str, subscription_id: str, resource_group: str | None = None) -> list[Pool]:
        """Pools of ``kind`` in the subscription, optionally only one resource group."""
        wanted = key(subscription_id) if resource_group is None else key(subscription_id, resource_group)
        return [pool for pool_key, pool in self._pools.items()
                if pool_key[0] == kind and pool_key[1:1 + len(wanted)] == wanted]

    def container_group(self, subscription_id: str, resource_group: str, name: str) -> ContainerGroup | None:
        """A container group (member or not), or None."""
        return self._container_groups.get(key(subscription_id, resource_group, name))

    def container_groups(self, subscription_id: str, resource_group: str | None = None) -> list[ContainerGroup]:
        """Container groups in the subscription, optionally only one resource group."""
        if resource_group is not None:
            return list(self._groups_by_resource_group.get(key(subscription_id, resource_group), {}).values())
        wanted = key(subscription_id)
        return [group for group_key, group in self._container_groups.items() if group_key[:len(wanted)] == wanted]

    def virtual_machine(self, subscription_id: str, resource_group: str, name: str) -> VirtualMachine | None:
        """A VM created by a pool (still pooled or recently claimed), or None."""
        return self._virtual_machines.get(key(subscription_id, resource_group, name))

    def virtual_machines_in(self, subscription_id: str, resource_group: str) -> list[VirtualMachine]:
        """Every VM of a resource group (pooled or recently claimed)."""
        wanted = key(subscription_id, resource_group)
        return [vm for vm in self._virtual_machines.values() if key(vm.subscription_id, vm.resource_group) == wanted]

    def scale_set_virtual_machines(self, subscription_id: str, resource_group: str, scale_set: str) -> list[VirtualMachine]:
        """VMs of a scale set: pooled ones and recently claimed (in-service) ones."""
        wanted = key(subscription_id, resource_group, scale_set)
        return [vm for vm in self._virtual_machines.values()
                if key(vm.subscription_id, vm.resource_group, vm.scale_set_name) == wanted]

    def lowercase_states_now(self) -> bool:
        """Seeded coin flip: should this runtime view spell states in lower case, as some Azure examples do?"""
        return self._noise.random() < self.lowercase_states

    # ---- internals -------------------------------------------------------------------------------

    def _pool_fields(
        self, subscription_id: str, resource_group: str, name: str, location: str, max_ready_capacity: int,
        zones: list[str] | None, health: str | None, forecast: bool, refill: bool, tags: dict[str, str] | None,
        dynamic_sizing: bool,
    ) -> _PoolFields:
        forecast = forecast or dynamic_sizing  # dynamic sizing follows Azure's forecast
        return _PoolFields(
            subscription_id=subscription_id.lower(), resource_group=resource_group, name=name, location=location,
            max_ready_capacity=max_ready_capacity, zones=list(zones) if zones else None, health=health,
            forecast=forecast, dynamic_sizing=dynamic_sizing, refill=refill, tags=tags, created_at=self.clock(),
        )

    def _add_pool(self, pool: Pool) -> None:
        pool_key = (pool.KIND, *key(pool.subscription_id, pool.resource_group, pool.name))
        if pool_key in self._pools:
            raise ValueError(f"pool {pool.resource_group}/{pool.name} already exists")
        self._register_resource_group(pool.subscription_id, pool.resource_group)
        self._pools[pool_key] = pool

    def _register_resource_group(self, subscription_id: str, resource_group: str) -> None:
        self._resource_groups.setdefault(key(subscription_id, resource_group), resource_group)

    def _find_pool(self, subscription_id: str, resource_group: str, name: str) -> Pool:
        for kind in POOL_RESOURCE_TYPES:
            pool = self.pool(kind, subscription_id, resource_group, name)
            if pool is not None:
                return pool
        raise KeyError(f"no standby pool {resource_group}/{name} in {subscription_id}")

    def _unique_name(self, prefix: str, taken: Mapping[tuple[str, ...], object], pool: Pool) -> str:
        while True:
            name = f"{prefix}_{self._rng.getrandbits(32):08x}"
            if key(pool.subscription_id, pool.resource_group, name) not in taken:
                return name

    def _lifetime(self, now: float, ready: bool) -> tuple[float, float]:
        """(created, ready) times of a new member: starting now, or ready for a while already."""
        duration = self._rng.uniform(*self.create_seconds)
        if not ready:
            return now, now + duration
        ready_at = now - self._rng.uniform(60.0, 3600.0)
        return ready_at - duration, ready_at

    def _store_group(self, group_key: tuple[str, ...], group: ContainerGroup) -> None:
        self._container_groups[group_key] = group
        self._groups_by_resource_group.setdefault(group_key[:2], {})[group_key] = group

    def _drop_group(self, group_key: tuple[str, ...]) -> None:
        del self._container_groups[group_key]
        groups = self._groups_by_resource_group.get(group_key[:2], {})
        groups.pop(group_key, None)
        if not groups:
            self._groups_by_resource_group.pop(group_key[:2], None)

    def _new_container_group(self, pool: ContainerGroupPool, now: float, ready: bool = False) -> ContainerGroup:
        name = self._unique_name(pool.name.lower(), self._container_groups, pool)
        created_at, ready_at = self._lifetime(now, ready)
        group = ContainerGroup(
            subscription_id=pool.subscription_id, resource_group=pool.resource_group, name=name,
            location=pool.location, created_at=created_at, ready_at=ready_at, pool=pool,
            zone=pool.least_used_zone(), phase="Running" if ready else "Creating",
        )
        pool.members[name.lower()] = group
        self._store_group(key(pool.subscription_id, pool.resource_group, name), group)
        return group

    def _new_virtual_machine(self, pool: VirtualMachinePool, now: float, ready: bool = False) -> VirtualMachine:
        name = self._unique_name(pool.scale_set_name, self._virtual_machines, pool)
        created_at, ready_at = self._lifetime(now, ready)
        target = pool.next_target_state()
        vm = VirtualMachine(
            subscription_id=pool.subscription_id, resource_group=pool.resource_group, name=name,
            location=pool.location, created_at=created_at, pool=pool, zone=pool.least_used_zone(),
            state=target if ready else "Creating", target_state=target, scale_set_name=pool.scale_set_name,
            state_until=None if ready else ready_at + (pool.post_provisioning_delay or 0),
        )
        pool.members[name.lower()] = vm
        self._virtual_machines[key(pool.subscription_id, pool.resource_group, name)] = vm
        return vm

    def _advance_health(self, pool: Pool, now: float, elapsed: float) -> None:
        if pool.recover_at is not None and now >= pool.recover_at:
            pool.health, pool.recover_at = HEALTHY, None
        elif pool.flaky_health and not pool.degraded and self._rng.random() < elapsed * FLAKY_DEGRADE_PER_SECOND:
            pool.health, pool.recover_at = DEGRADED, now + DEGRADED_PAUSE_SECONDS

    def _advance_container_groups(self, pool: ContainerGroupPool, now: float) -> None:
        for name, group in list(pool.members.items()):
            if group.phase == "Creating" and now >= group.ready_at:
                group.phase = "Running"
            elif group.phase == "Deleting" and group.gone_at is not None and now >= group.gone_at:
                del pool.members[name]
                self._drop_group(key(group.subscription_id, group.resource_group, group.name))

    def _advance_virtual_machines(self, pool: VirtualMachinePool, now: float) -> None:
        for vm in pool.members.values():
            if vm.state_until is None or now < vm.state_until:
                continue
            if vm.state == "Creating":
                vm.state, vm.state_until = VM_TRANSITION[vm.target_state], now + (vm.state_until - vm.created_at) / 2
            else:
                vm.state, vm.state_until = vm.target_state, None

    def _claim(self, pool: Pool, count: int | None, now: float, ready_only: bool = True) -> list[str]:
        """Hand out ``count`` members (None: all), oldest first; only ready ones unless ``ready_only`` is off."""
        if isinstance(pool, ContainerGroupPool):
            groups = [g for g in pool.members.values() if g.phase == "Running" or (not ready_only and g.phase == "Creating")]
            chosen_groups = sorted(groups, key=lambda g: g.ready_at)[:count]
            for group in chosen_groups:
                group.phase, group.gone_at = "Deleting", now + self.deleting_seconds
            return [group.name for group in chosen_groups]
        assert isinstance(pool, VirtualMachinePool)
        vms = [vm for vm in pool.members.values() if not ready_only or vm.state == vm.target_state]
        chosen_vms = sorted(vms, key=lambda vm: vm.created_at)[:count]
        for vm in chosen_vms:
            del pool.members[vm.name.lower()]
            vm.pool, vm.claimed_at, vm.state, vm.state_until = None, now, "Running", None
        return [vm.name for vm in chosen_vms]

    def _refill(self, pool: Pool, now: float) -> None:
        target = shapes.ready_target(pool, self.wall(now))
        if isinstance(pool, ContainerGroupPool):
            live = sum(1 for group in pool.members.values() if group.phase != "Deleting")
            for _ in range(target - live):
                self._new_container_group(pool, now)
        elif isinstance(pool, VirtualMachinePool):
            live = sum(1 for vm in pool.members.values() if vm.state != "Deleting")
            for _ in range(target - live):
                self._new_virtual_machine(pool, now)


def _check_vm_states(virtual_machine_state: str, state_distribution: dict[str, int] | None) -> None:
    """A pool keeps one VM_TRANSITION state, or MIX with percentages of them that sum to 100."""
    if virtual_machine_state == MIX:
        if (not state_distribution or set(state_distribution) - set(VM_TRANSITION)
                or sum(state_distribution.values()) != 100 or min(state_distribution.values()) < 0):
            raise ValueError(f"a Mix pool needs state_distribution: percent per {sorted(VM_TRANSITION)}, summing to 100")
    elif virtual_machine_state not in VM_TRANSITION:
        raise ValueError(f"virtual_machine_state must be one of {sorted(VM_TRANSITION)} or {MIX}")
    elif state_distribution is not None:
        raise ValueError("state_distribution applies only to a Mix pool")
