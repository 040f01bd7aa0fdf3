"""Snapshot -> exposition text, compared with golden files (kube-state-metrics style)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporter import collector, model
from tests.conftest import promtool_check_metrics
from exporter.armstats import ArmStatsSnapshot
from exporter.config import PoolRef
from exporter.poller import PoolData, PoolStatus, Snapshot

GOLDEN = Path(__file__).parent.parent / "fixtures" / "exposition"
SUB = "00000000-0000-0000-0000-000000000000"


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
        data=PoolData(
            pool=model.Pool("vmpool", "eastus", "Succeeded", 3, min_ready_capacity=1, virtual_machine_state="Deallocated", scale_set="vmss-web",
                            post_provisioning_delay_seconds=120.0),
            runtime=model.RuntimeView(
                tuple(model.InstanceCount("", state, 2 if state == "Deallocated" else 0) for state in model.VIRTUAL_MACHINE_POOL_STATES),
                "Succeeded",
                "degraded",
                model.Forecast(instances_requested=(1, 2, 3), start_timestamp=1_764_104_400.0, interval_seconds=3600.0, accuracy_ratio=0.85),
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


def never_polled() -> PoolStatus:
    return PoolStatus(ref("late", "rg-two"))


def snapshot(*pools: PoolStatus) -> Snapshot:
    return Snapshot(
        pools=pools,
        arm=ArmStatsSnapshot(
            requests={(SUB, "runtime_view", "200"): 7, (SUB, "runtime_view", "429"): 1, (SUB, "container_group", "error"): 2},
            remaining_reads={SUB: 249},
            throttled={SUB: 2},
            budget_wait_seconds={SUB: 4.5},
        ),
        interval=60.0,
        cycles_skipped=3,
        discovered={(SUB, "container_group"): 2, (SUB, "virtual_machine"): 1},
        cycle_duration=1.25,
    )


@pytest.mark.parametrize(
    ("golden", "pools"),
    [
        ("healthy_zonal.prom", (healthy_zonal(),)),
        ("mixed.prom", (healthy_zonal(), stale_failed(), never_polled())),
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


def test_stale_pool_keeps_only_up_and_timestamp() -> None:
    families = {f.name: f for f in text_string_to_metric_families(render(snapshot(stale_failed())))}
    pool_families = {name for name, family in families.items() if any(s.labels.get("pool") == "batch" for s in family.samples)}
    assert pool_families == {"azure_standby_pool_up", "azure_standby_pool_last_success_timestamp_seconds"}
    assert families["azure_standby_pool_up"].samples[0].value == 0


def test_help_says_values_are_cached_and_how_often() -> None:
    for family in text_string_to_metric_families(render(snapshot(healthy_zonal()))):
        if family.name != "azure_standby_pool_exporter_build_info":
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
