"""Snapshot -> exposition text, compared with golden files (kube-state-metrics style)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporter import collector, model
from exporter.armstats import ArmStatsSnapshot
from exporter.config import PoolRef
from exporter.snapshot import PoolData, PoolStatus, Snapshot
from tests.conftest import promtool_check_metrics
from tests.support.fakes import SUB

GOLDEN = Path(__file__).parent.parent / "fixtures" / "exposition"
OTHER_SUB = "11111111-1111-1111-1111-111111111111"  # configured, no request yet: its counters are 0


def render(snapshot: Snapshot, *families: str) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector.SnapshotCollector(lambda: snapshot))
    text = generate_latest(registry).decode()
    if not families:
        return text
    keep = {collector.PREFIX + name for name in families}
    return "".join(line + "\n" for line in text.splitlines() if _metric_name(line).removesuffix("_total") in keep)


def _metric_name(line: str) -> str:
    return line.split(" ")[2] if line.startswith("#") else line.split("{")[0].split(" ")[0]


def ref(name: str, rg: str = "rg-one") -> PoolRef:
    return PoolRef(SUB, rg, name)


def healthy_zonal() -> PoolStatus:
    return PoolStatus(
        ref("web"),
        polled=True,
        up=True,
        last_success=1_764_100_000.5,
        poll_duration=0.25,
        resource_up=True,
        members_up=True,
        data=PoolData(
            pool=model.Pool("web", "westeurope", "Succeeded", 4, zones=("1", "2")),
            runtime=model.RuntimeView(
                (model.InstanceCount("1", "Creating", 1), model.InstanceCount("1", "Running", 2), model.InstanceCount("1", "Deleting", 0),
                 model.InstanceCount("2", "Creating", 0), model.InstanceCount("2", "Running", 1), model.InstanceCount("2", "Deleting", 0)),
                "Succeeded",
                "healthy",
            ),
            members=(
                model.Member("web_00000001", "Succeeded", "Running", True),
                model.Member("web_00000002", "Creating", "Pending", False),
            ),
        ),
    )


def stale_failed() -> PoolStatus:
    return PoolStatus(ref("batch"), polled=True, up=False, last_success=1_764_000_000.0, poll_duration=10.0, last_error="server: boom", data=None)


def vm_pool_with_forecast() -> PoolStatus:
    return PoolStatus(
        PoolRef(SUB, "rg-vm", "vmpool", "virtual_machine"),
        polled=True,
        up=True,
        last_success=1_764_100_000.0,
        poll_duration=0.5,
        resource_up=True,
        members_up=True,
        data=PoolData(
            pool=model.Pool("vmpool", "eastus", "Succeeded", 3, min_ready_capacity=1, virtual_machine_state="Deallocated", scale_set="vmss-web",
                            post_provisioning_delay_seconds=120.0, dynamic_sizing=True),
            runtime=model.RuntimeView(
                tuple(model.InstanceCount("", state, 2 if state == "Deallocated" else 0) for state in model.VIRTUAL_MACHINE_POOL_STATES),
                "Succeeded",
                "degraded",
                model.Forecast(instances_requested=(1, 2, 3), start_timestamp=1_764_104_400.0, interval_seconds=3600.0, accuracy_ratio=0.85,
                               recent_instances_requested=(4, 5, 6)),
            ),
            members=(
                model.Member("vm-a", "Succeeded", "deallocated", True, in_pool=True),
                model.Member("vm-b", "Succeeded", "running", False, in_pool=False),
            ),
        ),
    )


def mix_vm_pool() -> PoolStatus:
    """A Mix pool as Microsoft's 2026-04-01 StandbyVirtualMachinePools_Get_MixState example describes it."""
    return PoolStatus(
        PoolRef(SUB, "rgstandbypool", "pool", "virtual_machine"),
        polled=True,
        up=True,
        last_success=1_764_100_000.0,
        poll_duration=0.5,
        resource_up=True,
        members_up=True,
        data=PoolData(
            pool=model.Pool("pool", "West US", "Succeeded", 304, min_ready_capacity=300, virtual_machine_state="Mix",
                            scale_set="myVmss", post_provisioning_delay_seconds=2.0,
                            vm_state_distribution=(model.StateShare("Running", 0.2), model.StateShare("Deallocated", 0.8),
                                                   model.StateShare("Hibernated", 0.0))),
            runtime=model.RuntimeView(
                tuple(model.InstanceCount("", state, {"Running": 2, "Deallocated": 8}.get(state, 0))
                      for state in model.VIRTUAL_MACHINE_POOL_STATES),
                "Succeeded",
                "healthy",
            ),
            members=(),
        ),
    )


def partial() -> PoolStatus:
    """Runtime view read; the pool resource stale and gone; one member's detail read failing (the other kept)."""
    return PoolStatus(
        ref("cache", "rg-two"), polled=True, up=True, last_success=1_764_100_000.0, poll_duration=0.5,
        resource_up=False, members_up=True, member_read_failures=1,
        last_error="pool resource: server: boom; members: server: cache_2: boom",
        data=PoolData(
            pool=None,
            runtime=model.RuntimeView(tuple(model.InstanceCount("", state, 1) for state in model.CONTAINER_GROUP_POOL_STATES), "Succeeded", None),
            members=(model.Member("cache_1", "Succeeded", "Running", True),),
        ),
    )


def never_polled() -> PoolStatus:
    return PoolStatus(ref("late", "rg-two"))


def snapshot(*pools: PoolStatus) -> Snapshot:
    return Snapshot(
        pools=pools,
        arm=ArmStatsSnapshot(
            requests={(SUB, "runtime_view", "200"): 7, (SUB, "runtime_view", "429"): 1, (SUB, "container_group", "error"): 2},
            remaining_reads={SUB: 249},
            remaining_global_reads={SUB: 3749},
            throttled={SUB: 2},
            budget_wait_seconds={SUB: 4.5},
        ),
        interval=60.0,
        cycles_skipped=3,
        discovered={(SUB, "container_group"): 2, (SUB, "virtual_machine"): 1},
        cycle_duration=1.25,
        subscriptions=(SUB, OTHER_SUB),
    )


@pytest.mark.parametrize(
    ("golden", "pools"),
    [
        ("healthy_zonal.prom", (healthy_zonal(),)),
        ("mixed.prom", (healthy_zonal(), stale_failed(), partial(), never_polled())),
        ("virtual_machine.prom", (vm_pool_with_forecast(),)),
        ("virtual_machine_mix.prom", (mix_vm_pool(),)),
    ],
)
def test_exposition_matches_golden_file(golden: str, pools: tuple[PoolStatus, ...]) -> None:
    text = render(snapshot(*pools))
    path = GOLDEN / golden
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text)
    assert text == path.read_text()


def values(snapshot: Snapshot, family: str, label: str) -> dict[str, float]:
    """label value -> sample value, for one family of the rendered text."""
    [parsed] = [f for f in text_string_to_metric_families(render(snapshot, family)) if f.name == collector.PREFIX + family]
    return {sample.labels[label]: sample.value for sample in parsed.samples}


def test_every_known_state_is_emitted_with_zero() -> None:
    provisioning = values(snapshot(healthy_zonal()), "provisioning_state", "state")
    assert provisioning == {"Succeeded": 1, "Failed": 0, "Canceled": 0, "Deleting": 0}
    members = values(snapshot(healthy_zonal()), "members", "provisioning_state")
    assert set(members) == set(model.CONTAINER_GROUP_PROVISIONING_STATES)
    assert {state: count for state, count in members.items() if count} == {"Creating": 1, "Succeeded": 1}


def test_unknown_states_are_published_verbatim() -> None:
    status = healthy_zonal()
    odd = snapshot(
        PoolStatus(
            status.ref, polled=True, up=True, last_success=1.0, poll_duration=0.1,
            data=PoolData(
                pool=model.Pool("web", "westeurope", "Migrating", 4),
                runtime=model.RuntimeView((model.InstanceCount("", "starting", 2),), "Succeeded", "recovering"),
                members=(model.Member("web_1", "PreProvisioned", None, False),),
            ),
        )
    )
    assert values(odd, "instances", "state") == {"starting": 2}
    assert values(odd, "provisioning_state", "state") == {"Succeeded": 0, "Failed": 0, "Canceled": 0, "Deleting": 0, "Migrating": 1}
    assert values(odd, "health_state", "state") == {"healthy": 0, "degraded": 0, "recovering": 1}
    assert values(odd, "members", "provisioning_state")["PreProvisioned"] == 1


def _pool_families(status: PoolStatus) -> dict[str, list[float]]:
    families = text_string_to_metric_families(render(snapshot(status)))
    return {f.name: [s.value for s in f.samples if s.labels.get("pool") == status.ref.name] for f in families
            if any(s.labels.get("pool") == status.ref.name for s in f.samples)}


def test_stale_pool_keeps_only_its_status_series() -> None:
    assert _pool_families(stale_failed()) == {
        "azure_standby_pool_up": [0], "azure_standby_pool_resource_up": [0], "azure_standby_pool_members_up": [0],
        "azure_standby_pool_member_read_failures": [0], "azure_standby_pool_last_success_timestamp_seconds": [1_764_000_000.0],
    }


def test_each_part_is_published_on_its_own() -> None:
    """Runtime view fresh, pool resource gone stale, one member failing: counts stay, capacity and info go."""
    families = _pool_families(partial())
    assert families["azure_standby_pool_instances"] == [1, 1, 1]
    assert families["azure_standby_pool_up"] == [1] and families["azure_standby_pool_resource_up"] == [0]
    assert families["azure_standby_pool_members_up"] == [1] and families["azure_standby_pool_member_read_failures"] == [1]
    assert families["azure_standby_pool_member_ready"] == [1]  # the failing member was never read: not published
    for gone in ("max_ready_capacity", "provisioning_state", "info"):
        assert "azure_standby_pool_" + gone not in families


NOT_FROM_ARM = {  # facts of the process itself, not cached ARM values
    "azure_standby_pool_exporter_build_info", "azure_standby_pool_exporter_total_shards",
    "azure_standby_pool_exporter_shard_ordinal",
}


def test_help_says_values_are_cached_and_how_often() -> None:
    for family in text_string_to_metric_families(render(snapshot(healthy_zonal()))):
        if family.name not in NOT_FROM_ARM:
            assert "Cached: refreshed every 60s" in family.documentation, family.name


def test_no_sample_has_a_timestamp() -> None:
    for family in text_string_to_metric_families(render(snapshot(healthy_zonal(), stale_failed()))):
        for sample in family.samples:
            assert sample.timestamp is None


def test_counters_end_in_total_and_gauges_do_not() -> None:
    for family in text_string_to_metric_families(render(snapshot(healthy_zonal()))):
        for sample in family.samples:
            assert sample.name.endswith("_total") == (family.type == "counter"), sample.name


@pytest.mark.parametrize("golden", sorted(p.name for p in GOLDEN.glob("*.prom")))
def test_golden_files_pass_promtool(promtool: str, golden: str) -> None:
    result = promtool_check_metrics(promtool, (GOLDEN / golden).read_text())
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr


def test_shard_metrics_as_kube_state_metrics_publishes_them() -> None:
    sharded = replace(snapshot(healthy_zonal()), shard_index=2, shard_count=3)
    text = render(sharded, "exporter_total_shards", "exporter_shard_ordinal")
    assert "azure_standby_pool_exporter_total_shards 3.0" in text
    assert 'azure_standby_pool_exporter_shard_ordinal{shard_ordinal="2"} 2.0' in text
    unsharded = render(snapshot(healthy_zonal()), "exporter_total_shards", "exporter_shard_ordinal")
    assert "azure_standby_pool_exporter_total_shards 1.0" in unsharded
    assert 'azure_standby_pool_exporter_shard_ordinal{shard_ordinal="0"} 0.0' in unsharded


def test_recent_demand_counts_back_from_the_forecast_start() -> None:
    assert values(snapshot(vm_pool_with_forecast()), "recent_instances_requested", "step") == {"1": 6, "2": 5, "3": 4}
    assert values(snapshot(healthy_zonal()), "recent_instances_requested", "step") == {}


def test_dynamic_sizing_is_published_for_every_pool_with_its_resource() -> None:
    found = values(snapshot(healthy_zonal(), vm_pool_with_forecast(), stale_failed()), "dynamic_sizing_enabled", "pool")
    assert found == {"web": 0, "vmpool": 1}
