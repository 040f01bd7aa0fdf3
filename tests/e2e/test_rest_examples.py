"""Microsoft's own REST API examples for every stable StandbyPool api-version, served as Microsoft wrote them
(tests/fixtures/arm/rest_examples/SOURCES.md), read by the real exporter process: every pool up with exact counts."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from exporter.simulator import Simulator, SimulatorServer
from tests.e2e.conftest import ExporterProcess

pytestmark = pytest.mark.e2e

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "arm" / "rest_examples"
INSTANCE_VIEW = EXAMPLES.parent / "vm_instance_view_seed.json"
SUB, RG = "00000000-0000-0000-0000-000000000009", "rgstandbypool"
STANDBY = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.StandbyPool"
CONTAINER_GROUPS = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.ContainerInstance/containerGroups"
CONTAINER_INSTANCE_VERSION, COMPUTE_VERSION = "2025-09-01", "2024-07-01"
VERSIONS = ("2024-03-01", "2025-03-01", "2025-10-01", "2026-04-01")


def example(version: str, name: str) -> Any:
    return json.loads((EXAMPLES / version / f"{name}.json").read_text())


def body(version: str, name: str) -> Any:
    return example(version, name)["responses"]["200"]["body"]


def serve(sim: Simulator, path: str, api_version: str, data: Any) -> None:
    sim.serve_verbatim(path, api_version, json.dumps(data).encode())


def vm_runtime_view(version: str) -> Any:
    if version == "2024-03-01":  # no Get example in this version: the list's `latest` view, as is
        [latest] = [view for view in body(version, "StandbyVirtualMachinePoolRuntimeViews_ListByStandbyPool")["value"]
                    if view["id"].endswith("/runtimeViews/latest")]
        return latest
    return body(version, "StandbyVirtualMachinePoolRuntimeViews_Get")


def serve_examples(sim: Simulator, version: str) -> None:
    vm_pools = "StandbyVirtualMachinePools_ListBySubscription" if version == "2024-03-01" else "StandbyVirtualMachinePools_ListByResourceGroup"
    serve(sim, f"{STANDBY}/standbyContainerGroupPools", version, body(version, "StandbyContainerGroupPools_ListByResourceGroup"))
    serve(sim, f"{STANDBY}/standbyContainerGroupPools/pool/runtimeViews/latest", version, body(version, "StandbyContainerGroupPoolRuntimeViews_Get"))
    serve(sim, f"{STANDBY}/standbyVirtualMachinePools", version, body(version, vm_pools))
    serve(sim, f"{STANDBY}/standbyVirtualMachinePools/pool/runtimeViews/latest", version, vm_runtime_view(version))
    standby_vms = body(version, "StandbyVirtualMachines_ListByStandbyVirtualMachinePoolResource")
    serve(sim, f"{STANDBY}/standbyVirtualMachinePools/pool/standbyVirtualMachines", version, standby_vms)
    serve(sim, CONTAINER_GROUPS, CONTAINER_INSTANCE_VERSION, {"value": []})  # outside the StandbyPool examples
    for item in standby_vms["value"]:
        serve(sim, item["properties"]["virtualMachineResourceId"] + "/instanceView", COMPUTE_VERSION, json.loads(INSTANCE_VIEW.read_text()))


def expected_counts(view: Any) -> dict[tuple[str, str], float]:
    counts: Counter[tuple[str, str]] = Counter()
    for summary in view["properties"]["instanceCountSummary"]:
        for entry in summary["instanceCountsByState"]:
            state = entry["state"]
            counts[(str(summary.get("zone", "")), state[:1].upper() + state[1:])] += entry["count"]
    return dict(counts)


def published_counts(exporter: ExporterProcess, kind: str) -> dict[tuple[str, str], float]:
    return {(labels["availability_zone"], labels["state"]): value for labels, value in exporter.samples("azure_standby_pool_instances")
            if labels["pool_kind"] == kind and value}


@pytest.mark.parametrize("version", VERSIONS)
def test_microsofts_examples_give_every_pool_up_with_exact_counts(version: str, start_exporter) -> None:
    sim = Simulator(seed=1, lowercase_states=0.0)
    serve_examples(sim, version)
    server = SimulatorServer(sim, host="127.0.0.1", port=0).start()
    try:
        config = {
            "azure": {"resource_manager_endpoint": server.url, "api_versions": {"standby_pool": version}},
            "polling": {"interval": "1s", "timeout": "2s", "stale_after": "1m"},
            "pools": [{"subscription_id": SUB, "resource_group": RG, "name": "pool", "kind": kind}
                      for kind in ("container_group", "virtual_machine")],
        }
        exporter = start_exporter(config, server)
        cg, vm = {"pool_kind": "container_group"}, {"pool_kind": "virtual_machine"}

        def cycles_done() -> bool:
            return all(exporter.value(name, **labels) == 1 for name in ("azure_standby_pool_up", "azure_standby_pool_resource_up",
                                                                       "azure_standby_pool_members_up") for labels in (cg, vm))

        exporter.wait_for(cycles_done, what="both pools up, pool resources and member lists read")
        def runtime_reads() -> float:
            return sum(value for labels, value in exporter.samples("azure_standby_pool_arm_requests_total") if labels["operation"] == "runtime_view")

        first = runtime_reads()
        exporter.wait_for(lambda: runtime_reads() >= first + 6, what="three more cycles")  # a malformed item is named once only

        assert published_counts(exporter, "container_group") == {k: v for k, v in expected_counts(
            body(version, "StandbyContainerGroupPoolRuntimeViews_Get")).items() if v}
        assert published_counts(exporter, "virtual_machine") == {k: v for k, v in expected_counts(vm_runtime_view(version)).items() if v}
        assert exporter.value("azure_standby_pool_max_ready_capacity", **cg) == 688
        assert exporter.value("azure_standby_pool_max_ready_capacity", **vm) == 304
        assert exporter.value("azure_standby_pool_min_ready_capacity", **vm) == 300
        assert exporter.value("azure_standby_pool_provisioning_state", state="Succeeded", **vm) == 1
        assert exporter.value("azure_standby_pool_info", virtual_machine_state="Running", scale_set="myVmss", zones="", **vm) == 1
        # what the pool resource says beyond capacity: zones (2025-10-01+ examples), postProvisioningDelay PT2S (2025-10-01+)
        zonal = version >= "2025-10-01"
        assert exporter.value("azure_standby_pool_info", zones="1,2,3" if zonal else "", **cg) == 1
        assert exporter.value("azure_standby_pool_post_provisioning_delay_seconds", **vm) == (2.0 if zonal else None)
        assert exporter.samples("azure_standby_pool_vm_state_distribution_ratio") == []  # no Mix pool in these examples
        assert exporter.value("azure_standby_pool_member_read_failures", **vm) == 0
        members = {labels["member"]: value for labels, value in exporter.samples("azure_standby_pool_member_in_pool")}
        skipped = [line for line in exporter.lines if 'msg="malformed list item skipped"' in line]
        if version == "2024-03-01":  # "/provider/" in virtualMachineResourceId: that item alone is skipped, named once
            assert members == {}
            assert len(skipped) == 1 and "standbyVirtualMachines/virtualMachine" in skipped[0] and "virtualMachineResourceId" in skipped[0]
        else:
            assert members == {"virtualMachine": 1} and skipped == []
            assert exporter.value("azure_standby_pool_member_ready", member="virtualMachine") == 0  # deallocated; the pool keeps Running
        assert exporter.value("azure_standby_pool_arm_next_links_refused_total", subscription_id=SUB) >= 3  # placeholders never followed
        assert re.search(r"azure_standby_pool_instances\{.*pool_kind=\"virtual_machine\".*\} ", exporter.metrics_text())
    finally:
        server.stop()
