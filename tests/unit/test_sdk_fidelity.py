"""Microsoft's own SDK models cannot tell the simulator from Azure.

Every kind of response the simulator serves is read over HTTP and deserialised with the pinned releases of
azure-mgmt-standbypool, azure-mgmt-containerinstance and azure-mgmt-compute, each model asked at the newest
api-version that release models. A field the model does not know fails the test unless it is on the allow-list
of fields newer than the SDK (per api-version). And every field of Microsoft's REST examples for an api-version
(tests/fixtures/arm/rest_examples) must be served by the simulator at that api-version.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.mgmt.compute import models as compute
from azure.mgmt.compute.operations import _operations as compute_requests
from azure.mgmt.containerinstance import models as aci
from azure.mgmt.containerinstance.operations import _container_groups_operations as aci_requests
from azure.mgmt.standbypool import models as standby
from azure.mgmt.standbypool.operations import _operations as standby_requests

from exporter.simulator import Simulator, SimulatorServer
from exporter.simulator.routes import STANDBY_API_VERSIONS
from exporter.simulator.shapes import since
from tests.support.sdk_shapes import json_paths, unmodelled

EXAMPLES = Path(__file__).resolve().parent.parent / "fixtures" / "arm" / "rest_examples"
SUB, RG = "00000000-0000-0000-0000-000000000009", "rgstandbypool"
STANDBY = "Microsoft.StandbyPool"
PAGE_KEYS = {"value", "nextLink"}  # every ...ListResult of Microsoft's swaggers


def _api_version(url: str) -> str:
    return url.rsplit("api-version=", 1)[1]


# The api-version each pinned SDK release models, read from its own request builders.
SDK_STANDBY = _api_version(standby_requests.build_standby_virtual_machine_pools_get_request(
    resource_group_name=RG, standby_virtual_machine_pool_name="p", subscription_id=SUB).url)
SDK_ACI = _api_version(aci_requests.build_get_request(
    resource_group_name=RG, container_group_name="g", subscription_id=SUB).url)
SDK_COMPUTE = _api_version(compute_requests.build_virtual_machines_instance_view_request(
    resource_group_name=RG, vm_name="vm", subscription_id=SUB).url)

STANDBY_MODELS: dict[str, type] = {
    "cg_pool": standby.StandbyContainerGroupPoolResource,
    "vm_pool": standby.StandbyVirtualMachinePoolResource,
    "cg_runtime_view": standby.StandbyContainerGroupPoolRuntimeViewResource,
    "vm_runtime_view": standby.StandbyVirtualMachinePoolRuntimeViewResource,
    "standby_vm": standby.StandbyVirtualMachineResource,
    "error": standby.ErrorResponse,
}

# Fields newer than the pinned SDK: response kind -> JSON path -> first api-version that has it. Nothing else
# unmodelled may appear, and each entry must really be served from its api-version on (no stale entries).
NEWER_THAN_SDK: dict[str, dict[str, str]] = {
    "vm_pool": {"properties.vmStateDistribution": "2026-04-01"},  # Mix pools, 2026-04-01 swagger
}
# The same for container groups (azure-mgmt-containerinstance), by Microsoft.ContainerInstance api-version.
ACI_NEWER_THAN_SDK: dict[str, str] = {
    "properties.isCreatedFromStandbyPool": "2025-09-01",  # in Microsoft's 2025-09-01 ContainerGroupsGet examples
}
ACI_VERSIONS = (SDK_ACI, "2025-09-01")  # the SDK's, and the exporter's default

# Fields of Microsoft's examples that Microsoft's own swagger for that api-version does not define: the simulator
# does not serve them (the SDK would reject them). degradedPolicy: not in StandbyContainerGroupPoolResourceProperties
# of stable/2025-03-01/standbypool.json (commit 058439034be46014fc18ed01c825925eea370e64), nor in any later one.
EXAMPLE_DEFECTS: dict[str, set[str]] = {
    "2025-03-01/StandbyContainerGroupPools_ListByResourceGroup.json": {
        "properties.degradedPolicy", "properties.degradedPolicy.failurePercentageToEnterDegraded",
        "properties.degradedPolicy.retryPercentage", "properties.degradedPolicy.retryWaitingTimeByMinutes",
    },
}

# Fields that appeared in a later api-version: absent before, served from then on (given a pool that has them).
FIELD_SINCE: dict[str, dict[str, str]] = {
    "cg_pool": {"properties.zones": "2025-03-01", "properties.elasticityProfile.dynamicSizing": "2025-10-01"},
    "vm_pool": {"properties.elasticityProfile.postProvisioningDelay": "2025-10-01",
                "properties.elasticityProfile.dynamicSizing": "2025-10-01",
                "properties.vmStateDistribution": "2026-04-01"},
    "cg_runtime_view": {"properties.instanceCountSummary[].zone": "2025-03-01", "properties.status": "2025-03-01",
                        "properties.prediction": "2025-03-01"},
    # VM summaries are zonal in every api-version (Microsoft's 2024-03-01 example is); the simulator serves
    # runtime views from its oldest api-version on
    "vm_runtime_view": {"properties.instanceCountSummary[].zone": STANDBY_API_VERSIONS[0][:10],
                        "properties.status": "2025-03-01", "properties.prediction": "2025-03-01"},
}


class Client:
    """GETs against the simulator with a managed-identity token, collecting bodies by response kind."""

    def __init__(self, server: SimulatorServer) -> None:
        self.server = server
        self.session = requests.Session()
        token = self.session.get(server.identity_endpoint, headers={"X-IDENTITY-HEADER": server.identity_header},
                                 params={"api-version": "2019-08-01", "resource": "https://management.azure.com"})
        self.headers = {"Authorization": f"Bearer {token.json()['access_token']}"}

    def get(self, path: str, api_version: str | None, status: int = 200, headers: dict[str, str] | None = None) -> Any:
        url = path if path.startswith("http") else self.server.url + path
        params = {} if api_version is None else {"api-version": api_version}
        reply = self.session.get(url, params=params, headers=self.headers if headers is None else headers, timeout=10)
        assert reply.status_code == status, reply.text
        return reply.json()

    def pages(self, path: str, api_version: str) -> Iterator[dict[str, Any]]:
        page = self.get(path, api_version)
        yield page
        while "nextLink" in page:
            page = self.get(page["nextLink"], None)
            yield page


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    now = [1000.0]
    sim = Simulator(seed=3, clock=lambda: now[0], lowercase_states=0.0, page_size=2, read_bucket=None)
    sim.add_container_group_pool(SUB, RG, "cg-zonal", max_ready_capacity=3, zones=["1", "2", "3"], forecast=True,
                                 tags={"app": "web"})
    sim.add_container_group_pool(SUB, RG, "cg-plain", max_ready_capacity=3, running=1, creating=2, health=None)
    sim.add_virtual_machine_pool(SUB, RG, "vm-zonal", max_ready_capacity=3, min_ready_capacity=1, running=2,
                                 zones=["1", "2", "3"], forecast=True, post_provisioning_delay=120)
    sim.add_virtual_machine_pool(SUB, RG, "vm-mix", max_ready_capacity=5, virtual_machine_state="Mix",
                                 state_distribution={"Running": 20, "Deallocated": 80}, post_provisioning_delay=2,
                                 scale_set_name="mixScaleSet")
    sim.add_virtual_machine_pool(SUB, RG, "vm-hibernated", max_ready_capacity=1, virtual_machine_state="Hibernated",
                                 scale_set_name="hibernatingScaleSet")
    sim.add_container_group(SUB, RG, "failed-job", state="Failed")
    sim.add_container_group(SUB, RG, "pending-job", state="Pending")
    sim.tick()  # refills: Creating VMs beside the ready ones
    with SimulatorServer(sim) as server:
        yield Client(server)


def _pool_path(kind: str, name: str = "") -> str:
    resource_type = "standbyContainerGroupPools" if kind == "cg" else "standbyVirtualMachinePools"
    return f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/{STANDBY}/{resource_type}" + (f"/{name}" if name else "")


def standby_responses(client: Client, api_version: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(kind, body) for every kind of Microsoft.StandbyPool response at ``api_version``; list pages as items."""
    for kind, names in (("cg", ("cg-zonal", "cg-plain")), ("vm", ("vm-zonal", "vm-mix", "vm-hibernated"))):
        lists = [_pool_path(kind), f"/subscriptions/{SUB}/providers/{STANDBY}/{_pool_path(kind).rsplit('/', 1)[1]}"]
        for path in lists:
            for page in client.pages(path, api_version):
                assert set(page) <= PAGE_KEYS and page["value"], page
                yield from ((f"{kind}_pool", item) for item in page["value"])
        for name in names:
            yield f"{kind}_pool", client.get(_pool_path(kind, name), api_version)
            yield f"{kind}_runtime_view", client.get(_pool_path(kind, name) + "/runtimeViews/latest", api_version)
    for name in ("vm-zonal", "vm-mix"):
        items = [item for page in client.pages(_pool_path("vm", name) + "/standbyVirtualMachines", api_version)
                 for item in page["value"]]
        yield from (("standby_vm", item) for item in items)
        yield "standby_vm", client.get(f"{_pool_path('vm', name)}/standbyVirtualMachines/{items[0]['name']}", api_version)
    yield "error", client.get(_pool_path("cg", "no-such-pool"), api_version, 404)
    yield "error", client.get(_pool_path("cg", "cg-zonal") + "/runtimeViews/oldest", api_version, 404)
    yield "error", client.get(_pool_path("cg", "cg-zonal"), "2019-01-01", 400)
    yield "error", client.get(_pool_path("cg", "cg-zonal"), api_version, 401, headers={})


def _served(client: Client, api_version: str) -> dict[str, set[str]]:
    paths: dict[str, set[str]] = defaultdict(set)
    for kind, body in standby_responses(client, api_version):
        paths[kind].update(json_paths(body))
    return paths


def test_pinned_sdks_model_the_api_versions_the_allow_list_assumes() -> None:
    """A new SDK release moves these: revisit NEWER_THAN_SDK when bumping the pins in pyproject.toml."""
    assert (SDK_STANDBY, SDK_ACI, SDK_COMPUTE) == ("2025-10-01", "2023-05-01", "2026-04-01")
    for fields in NEWER_THAN_SDK.values():
        assert all(first > SDK_STANDBY for first in fields.values())


@pytest.mark.parametrize("api_version", STANDBY_API_VERSIONS)
def test_standby_pool_responses_deserialise_with_azure_mgmt_standbypool(client: Client, api_version: str) -> None:
    unexpected: dict[str, set[str]] = defaultdict(set)
    allowed_seen: set[tuple[str, str]] = set()
    for kind, body in standby_responses(client, api_version):
        allowed = {path for path, first in NEWER_THAN_SDK.get(kind, {}).items() if since(api_version, first)}
        extra = set(unmodelled(STANDBY_MODELS[kind], body))
        allowed_seen.update((kind, path) for path in extra & allowed)
        unexpected[kind].update(extra - allowed)
    assert not {kind: paths for kind, paths in unexpected.items() if paths}
    expected_allowed = {(kind, path) for kind, fields in NEWER_THAN_SDK.items()
                        for path, first in fields.items() if since(api_version, first)}
    assert allowed_seen == expected_allowed, "an allow-list entry the simulator no longer serves"


@pytest.mark.parametrize("api_version", STANDBY_API_VERSIONS)
def test_fields_appear_in_the_api_version_that_introduced_them(client: Client, api_version: str) -> None:
    served = _served(client, api_version)
    for kind, fields in FIELD_SINCE.items():
        for path, first in fields.items():
            assert (path in served[kind]) == since(api_version, first), (kind, path)


def _example_kind(name: str) -> str:
    for prefix, kind in (("StandbyContainerGroupPoolRuntimeViews_", "cg_runtime_view"),
                         ("StandbyVirtualMachinePoolRuntimeViews_", "vm_runtime_view"),
                         ("StandbyContainerGroupPools_", "cg_pool"), ("StandbyVirtualMachinePools_", "vm_pool"),
                         ("StandbyVirtualMachines_", "standby_vm")):
        if name.startswith(prefix):
            return kind
    raise AssertionError(f"no response kind for example {name}")


EXAMPLE_VERSIONS = sorted(path.name for path in EXAMPLES.iterdir() if path.is_dir())


def test_every_stable_api_version_has_examples() -> None:
    assert EXAMPLE_VERSIONS == [version for version in STANDBY_API_VERSIONS if not version.endswith("-preview")]


@pytest.mark.parametrize("api_version", EXAMPLE_VERSIONS)
def test_simulator_serves_every_field_of_microsofts_examples(client: Client, api_version: str) -> None:
    """Items of Microsoft's examples (list items one by one) against everything the simulator serves of that kind."""
    served = _served(client, api_version)
    missing: dict[str, set[str]] = defaultdict(set)
    for example in sorted((EXAMPLES / api_version).glob("*.json")):
        body = json.loads(example.read_text(encoding="utf-8"))["responses"]["200"]["body"]
        kind = _example_kind(example.name)
        defects = EXAMPLE_DEFECTS.get(f"{api_version}/{example.name}", set())
        paths = {path for item in (body["value"] if "value" in body else [body]) for path in json_paths(item)}
        assert defects <= paths, "a listed example defect the example no longer has"
        missing[example.name].update(paths - defects - served[kind])
    assert not {name: paths for name, paths in missing.items() if paths}


@pytest.mark.parametrize("api_version", ACI_VERSIONS)
def test_container_groups_deserialise_with_azure_mgmt_containerinstance(client: Client, api_version: str) -> None:
    groups = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.ContainerInstance/containerGroups"
    allowed = {path for path, first in ACI_NEWER_THAN_SDK.items() if since(api_version, first)}
    names, states, extra = [], set(), set()
    for page in client.pages(groups, api_version):
        assert set(page) <= PAGE_KEYS
        for item in page["value"]:
            extra.update(unmodelled(aci.ContainerGroup, item))
            names.append(item["name"])
    for name in names:
        body = client.get(f"{groups}/{name}", api_version)
        extra.update(unmodelled(aci.ContainerGroup, body))
        states.add(body["properties"]["instanceView"]["state"])
        if allowed:  # pool members (named <pool>_<suffix>) and other container groups told apart
            assert body["properties"]["isCreatedFromStandbyPool"] == name.startswith(("cg-zonal_", "cg-plain_")), name
        if body["properties"]["instanceView"]["state"] in ("Pending", "Failed"):
            assert body["properties"]["instanceView"]["events"], name
    assert extra == allowed  # nothing unmodelled beyond the allow-list, and every allowed field served
    assert states >= {"Running", "Pending", "Failed"}
    error = client.get(f"{groups}/nope", api_version, 404)
    assert set(error) == {"error"} and unmodelled(aci.CloudErrorBody, error["error"]) == []


def test_vm_instance_views_deserialise_with_azure_mgmt_compute(client: Client) -> None:
    powers = set()
    for name in ("vm-zonal", "vm-mix", "vm-hibernated"):
        for page in client.pages(_pool_path("vm", name) + "/standbyVirtualMachines", SDK_STANDBY):
            for item in page["value"]:
                view = client.get(item["properties"]["virtualMachineResourceId"] + "/instanceView", SDK_COMPUTE)
                assert unmodelled(compute.VirtualMachineInstanceView, view) == [], item["name"]
                powers.update(status["code"] for status in view["statuses"])
    assert {"ProvisioningState/creating", "PowerState/running", "PowerState/deallocated",
            "HibernationState/Hibernated"} <= powers
    vms = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachines"
    listed = 0
    for scale_set in ("mixScaleSet", "hibernatingScaleSet"):
        scale_set_id = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachineScaleSets/{scale_set}"
        for item in (item for page in client.pages(f"{vms}?$filter='virtualMachineScaleSet/id' eq '{scale_set_id}'&$expand=instanceView",
                                                   SDK_COMPUTE) for item in page["value"]):
            assert unmodelled(compute.VirtualMachine, item) == [], item["name"]
            assert item["properties"]["virtualMachineScaleSet"]["id"] == scale_set_id and item["properties"]["instanceView"]
            listed += 1
    assert listed >= 6
    seed = json.loads((EXAMPLES.parent / "vm_instance_view_seed.json").read_text(encoding="utf-8"))
    assert set(json_paths(seed)) <= set(json_paths(view)) | {"statuses[].time"}  # Microsoft Learn's sample


@pytest.mark.parametrize("api_version", [version for version in EXAMPLE_VERSIONS if since(version, "2025-03-01")])
def test_forecast_info_has_microsofts_keys_and_a_string_history(client: Client, api_version: str) -> None:
    """forecastInfo is a JSON string the SDK cannot look into: its keys must be those of Microsoft's examples."""
    examples = [json.loads(path.read_text(encoding="utf-8"))["responses"]["200"]["body"]
                for path in (EXAMPLES / api_version).glob("*RuntimeViews_Get.json")]
    microsoft = [json.loads(body["properties"]["prediction"]["forecastInfo"])
                 for body in examples if "prediction" in body["properties"]]
    assert microsoft
    served = [json.loads(body["properties"]["prediction"]["forecastInfo"])
              for kind, body in standby_responses(client, api_version)
              if kind.endswith("runtime_view") and "prediction" in body["properties"]]
    assert served and all(set(info) == set(microsoft[0]) for info in [*microsoft, *served])
    assert all(isinstance(info["instancesRequestedCount_recentHistory"], str) for info in served)
    assert all(isinstance(json.loads(info["instancesRequestedCount_recentHistory"]), list) for info in served)
