"""The benchmark world: many identical, quiet pools spread over resource groups (and subscriptions).

Every pool is full (``members`` Running container groups, none creating), healthy, and nothing changes
unless the caller ticks the world with a claim probability: a steady poll cycle then has nothing new to
read. Names are deterministic: resource groups ``rg-bench-000``..., pools ``pool-00000``... (pool ``i``
lives in resource group ``i % resource_groups`` of subscription ``i % subscriptions``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .world import Simulator


def bench_subscription(index: int) -> str:
    """The ``index``-th benchmark subscription id (a GUID)."""
    return f"00000000-0000-0000-0000-{0xbe00 + index:012x}"


def bench_resource_group(index: int) -> str:
    return f"rg-bench-{index:03d}"


def bench_pool(index: int) -> str:
    return f"pool-{index:05d}"


@dataclass(frozen=True)
class BenchPool:
    subscription_id: str
    resource_group: str
    name: str


def bench_layout(pools: int, resource_groups: int, subscriptions: int = 1) -> list[BenchPool]:
    """Where each benchmark pool lives (the same layout :func:`build_bench` creates)."""
    if pools < 1 or resource_groups < 1 or subscriptions < 1:
        raise ValueError("pools, resource_groups and subscriptions must be at least 1")
    return [BenchPool(bench_subscription(i % subscriptions), bench_resource_group(i % resource_groups), bench_pool(i))
            for i in range(pools)]


def build_bench(
    cls: type[Simulator],
    pools: int,
    members: int,
    resource_groups: int,
    subscriptions: int = 1,
    *,
    seed: int = 1,
    latency: float = 0.0,
    page_size: int = 50,
    read_bucket: int | None = None,
    read_refill_per_second: float = 25.0,
    claim_probability: float = 0.0,
    request_log_limit: int | None = None,
    kind: str = "container_group",
) -> Simulator:
    """Build the benchmark world with ``cls`` (Simulator): pools of ``kind`` (container_group or virtual_machine);
    ARM read throttling is off unless ``read_bucket`` is set."""
    sim = cls(seed=seed, page_size=page_size, latency=latency, read_bucket=read_bucket,
              read_refill_per_second=read_refill_per_second, claim_probability=claim_probability,
              lowercase_states=0.0, request_log_limit=request_log_limit)
    for pool in bench_layout(pools, resource_groups, subscriptions):
        if kind == "virtual_machine":  # each VM pool attached to a scale set of its own
            sim.add_virtual_machine_pool(pool.subscription_id, pool.resource_group, pool.name, max_ready_capacity=members,
                                         running=members, scale_set_name=f"vmss-{pool.name}")
        else:
            sim.add_container_group_pool(pool.subscription_id, pool.resource_group, pool.name,
                                         max_ready_capacity=members, running=members, creating=0)
    return sim
