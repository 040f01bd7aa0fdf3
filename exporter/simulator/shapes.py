"""JSON bodies in the REST form Azure Resource Manager returns them."""

from __future__ import annotations

import json
import math
import random
import zlib
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .entities import (
    CONTAINER_GROUP_STATES,
    MIX,
    VIRTUAL_MACHINE_STATES,
    ContainerGroup,
    ContainerGroupPool,
    Pool,
    VirtualMachine,
    VirtualMachinePool,
)

Json = dict[str, Any]
Wall = Callable[[float], float]  # simulator clock -> epoch seconds

STANDBY = "Microsoft.StandbyPool"
IMAGE = "mcr.microsoft.com/azuredocs/aci-helloworld:latest"
IMAGE_DIGEST = "mcr.microsoft.com/azuredocs/aci-helloworld@sha256:565dba8ce20ca1a311c2d9485089d7ddc935dd50140510050345a1b0ea4ffa6e"
HEALTH_MESSAGES = {
    "healthstate/healthy": "The pool is healthy.",
    "healthstate/degraded": "Instance creation failed repeatedly; creating instances is paused for 30 seconds.",
}


def since(api_version: str, first: str) -> bool:
    """True when ``api_version`` is ``first`` or newer (previews sort by their date)."""
    return api_version[:10] >= first


def rfc3339(epoch: float) -> str:
    """UTC timestamp with a Z suffix, as ARM writes them."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def arm_error(code: str, message: str) -> Json:
    """ARM's error envelope."""
    return {"error": {"code": code, "message": message}}


def pool_id(pool: Pool) -> str:
    """Resource id of a standby pool."""
    return (f"/subscriptions/{pool.subscription_id}/resourceGroups/{pool.resource_group}"
            f"/providers/{STANDBY}/{pool.resource_type}/{pool.name}")


def system_data(created_epoch: float) -> Json:
    """ARM's systemData of a resource created (and last modified) at ``created_epoch``."""
    created = rfc3339(created_epoch)
    return {
        "createdBy": "simulator@example.com", "createdByType": "User", "createdAt": created,
        "lastModifiedBy": "simulator@example.com", "lastModifiedByType": "User", "lastModifiedAt": created,
    }


def iso8601_duration(seconds: int) -> str:
    """Whole seconds as an ISO 8601 duration in the form Microsoft's examples use (``PT2S``, ``PT2M``, ``PT1H30M``)."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{value}{unit}" for value, unit in ((hours, "H"), (minutes, "M"), (secs, "S")) if value]
    return "PT" + ("".join(parts) or "0S")


def _tracked(pool: Pool, properties: Json, wall: Wall) -> Json:
    return {
        "id": pool_id(pool),
        "name": pool.name,
        "type": f"{STANDBY}/{pool.resource_type}",
        "location": pool.location,
        "tags": dict(pool.tags or {}),
        "systemData": system_data(wall(pool.created_at)),
        "properties": properties,
    }


def container_group_pool(pool: ContainerGroupPool, api_version: str, wall: Wall) -> Json:
    """GET .../standbyContainerGroupPools/{pool}."""
    group_scope = f"/subscriptions/{pool.subscription_id}/resourceGroups/{pool.resource_group}/providers"
    elasticity: Json = {"maxReadyCapacity": pool.max_ready_capacity, "refillPolicy": "always"}
    if since(api_version, "2025-10-01"):
        elasticity["dynamicSizing"] = {"enabled": pool.dynamic_sizing}
    properties: Json = {
        "elasticityProfile": elasticity,
        "containerGroupProperties": {
            "containerGroupProfile": {
                "id": f"{group_scope}/Microsoft.ContainerInstance/containerGroupProfiles/{pool.name}-profile",
                "revision": 1,
            },
            "subnetIds": [{"id": f"{group_scope}/Microsoft.Network/virtualNetworks/{pool.name}-vnet/subnets/default"}],
        },
        "provisioningState": pool.provisioning_state,
    }
    if pool.zones and since(api_version, "2025-03-01"):
        properties["zones"] = list(pool.zones)
    return _tracked(pool, properties, wall)


def virtual_machine_pool(pool: VirtualMachinePool, api_version: str, wall: Wall) -> Json:
    """GET .../standbyVirtualMachinePools/{pool}: postProvisioningDelay and dynamicSizing from 2025-10-01,
    a Mix pool's vmStateDistribution from 2026-04-01."""
    elasticity: Json = {"maxReadyCapacity": pool.max_ready_capacity}
    if pool.min_ready_capacity is not None:
        elasticity["minReadyCapacity"] = pool.min_ready_capacity
    if since(api_version, "2025-10-01"):
        if pool.post_provisioning_delay is not None:
            elasticity["postProvisioningDelay"] = iso8601_duration(pool.post_provisioning_delay)
        elasticity["dynamicSizing"] = {"enabled": pool.dynamic_sizing}
    properties: Json = {"elasticityProfile": elasticity, "virtualMachineState": pool.virtual_machine_state}
    if pool.virtual_machine_state == MIX and pool.state_distribution and since(api_version, "2026-04-01"):
        properties["vmStateDistribution"] = {
            f"{state.lower()}Percent": pool.state_distribution.get(state, 0)
            for state in ("Running", "Deallocated", "Hibernated")
        }
    properties["attachedVirtualMachineScaleSetId"] = (
        f"/subscriptions/{pool.subscription_id}/resourceGroups/{pool.resource_group}"
        f"/providers/Microsoft.Compute/virtualMachineScaleSets/{pool.scale_set_name}")
    properties["provisioningState"] = pool.provisioning_state
    return _tracked(pool, properties, wall)


def runtime_view(pool: Pool, api_version: str, now_wall: float, lowercase: bool, wall: Wall) -> Json:
    """GET .../{pool}/runtimeViews/latest: counts by (zone and) state, health and forecast by api-version.

    VM pools' summaries carry ``zone`` in every stable api-version (Microsoft's 2024-03-01 example is zonal);
    container group pools' summaries only from 2025-03-01, as do ``status`` and ``prediction``.
    """
    container_groups = isinstance(pool, ContainerGroupPool)
    states = CONTAINER_GROUP_STATES if container_groups else VIRTUAL_MACHINE_STATES
    modern = since(api_version, "2025-03-01")
    zonal = bool(pool.zones) and (modern or not container_groups)
    counts = pool.zone_counts()

    def by_state(counter: Counter[str]) -> list[Json]:
        return [{"state": state.lower() if lowercase else state, "count": counter[state]} for state in states]

    if zonal:
        assert pool.zones is not None
        summaries = [{"zone": int(zone) if zone.isdigit() else zone,
                      "instanceCountsByState": by_state(counts.get(zone, Counter()))} for zone in pool.zones]
    else:
        summaries = [{"instanceCountsByState": by_state(sum(counts.values(), Counter()))}]
    properties: Json = {"instanceCountSummary": summaries}
    if modern and pool.health is not None:
        properties["status"] = {"code": pool.health, "message": HEALTH_MESSAGES.get(pool.health.lower(), "")}
    if modern and pool.forecast:
        properties["prediction"] = prediction(pool, now_wall)
    properties["provisioningState"] = pool.provisioning_state
    return {"id": f"{pool_id(pool)}/runtimeViews/latest", "name": "latest",
            "type": f"{STANDBY}/{pool.resource_type}/runtimeViews", "systemData": system_data(wall(pool.created_at)),
            "properties": properties}


def _demand_wave(hour: int) -> float:
    """The share of max ready capacity requested per hour: a daily wave between 0.2 and 0.9."""
    return 0.55 + 0.35 * math.sin(2 * math.pi * hour / 24)


def ready_target(pool: Pool, now_wall: float) -> int:
    """How many instances Azure keeps ready or on their way: max ready capacity, or with dynamic sizing
    the forecast demand of the current hour (at least 1, at most max ready capacity)."""
    if not pool.dynamic_sizing:
        return pool.max_ready_capacity
    wanted = round(pool.max_ready_capacity * _demand_wave(int(now_wall // 3600)))
    return min(pool.max_ready_capacity, max(1, wanted))


def prediction(pool: Pool, now_wall: float) -> Json:
    """A 12-hour forecast starting at the next full hour, and the 12 hours before it as recent history
    (chronological: the last element is the hour right before the forecast starts).

    ``forecastInfo`` is a JSON string in Microsoft's shape: camelCase keys, the recent history itself a JSON
    string (``{"forecastAccuracy": 85, "seriesUnitIntervalInMins": 60, "instancesRequestedCount_recentHistory": "[9, 4]"}``).
    """
    start_hour = int(now_wall // 3600) + 1
    rng = random.Random(f"{pool.name.lower()}/{start_hour}")

    def demand(hour: int) -> int:
        return max(0, round(pool.max_ready_capacity * _demand_wave(hour)) + rng.randint(-1, 1))

    values = [demand(start_hour + i) for i in range(12)]
    history = [demand(start_hour - 12 + i) for i in range(12)]
    info = {"forecastAccuracy": rng.randint(70, 95), "seriesUnitIntervalInMins": 60,
            "instancesRequestedCount_recentHistory": json.dumps(history)}
    return {
        "forecastValues": {"instancesRequestedCount": values},
        "forecastStartTime": datetime.fromtimestamp(start_hour * 3600, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "forecastInfo": json.dumps(info),
    }


def _status(group: ContainerGroup) -> tuple[str, str, str]:
    """(provisioningState, instanceView.state, container state) before overrides."""
    if group.pool is not None:
        if group.phase == "Creating":
            pending = zlib.crc32(group.name.encode()) % 2 == 0
            return ("Pending" if pending else "Creating"), "Pending", "Waiting"
        return ("Deleting" if group.phase == "Deleting" else "Succeeded"), "Running", "Running"
    state = group.instance_state
    container = {"Running": "Running", "Pending": "Waiting"}.get(state, "Terminated")
    provisioning = state if state in ("Pending", "Failed") else "Succeeded"
    return provisioning, state, container


def _event(name: str, message: str, at: float) -> Json:
    stamp = rfc3339(at)
    return {"count": 1, "firstTimestamp": stamp, "lastTimestamp": stamp, "name": name, "message": message,
            "type": "Normal"}


def _container_instance_view(group: ContainerGroup, state: str, wall: Wall) -> Json:
    created, ready = wall(group.created_at), wall(group.ready_at)
    events = [_event("Pulling", f'pulling image "{IMAGE_DIGEST}"', created)]
    current: Json = {"state": state, "detailStatus": "ContainerCreating" if state == "Waiting" else ""}
    if state != "Waiting":
        events.append(_event("Pulled", f'Successfully pulled image "{IMAGE_DIGEST}"', (created + ready) / 2))
        events.append(_event("Started", "Started container", ready))
        current["startTime"] = rfc3339(ready)
    if state == "Terminated":
        current.update(exitCode=1 if group.instance_state == "Failed" else 0, finishTime=rfc3339(ready + 60.0),
                       detailStatus="Error" if group.instance_state == "Failed" else "Completed")
    return {"restartCount": 0, "currentState": current, "events": events}


def _group_events(group: ContainerGroup, state: str, wall: Wall) -> list[Json]:
    """Group-level events: none while Running (as Microsoft's Learn sample shows), one while Pending or
    Failed (as Microsoft's ContainerGroupsGet_Failed example shows for a Pending group)."""
    if state == "Pending":
        return [_event("Pending", "Waiting for the container group's resources to be allocated.", wall(group.created_at))]
    if state == "Failed":
        return [_event("Failed", "A container of the group exited with code 1.", wall(group.ready_at + 60.0))]
    return []


def container_group_id(group: ContainerGroup) -> str:
    """Resource id of a container group; ACI reports the resource group lower-cased."""
    return (f"/subscriptions/{group.subscription_id}/resourceGroups/{group.resource_group.lower()}"
            f"/providers/Microsoft.ContainerInstance/containerGroups/{group.name}")


def container_group(group: ContainerGroup, with_instance_view: bool, wall: Wall, api_version: str) -> Json:
    """A container group; the list form has no instanceView anywhere, the GET form has both.

    ``isCreatedFromStandbyPool`` (read-only) from api-version 2025-09-01, as Microsoft's examples of it show.
    """
    provisioning, state, container_state = _status(group)
    provisioning = group.overrides.get("provisioning_state", provisioning)
    state = group.overrides.get("state", state)
    container_state = group.overrides.get("container_state", container_state)
    container: Json = {
        "image": IMAGE, "command": [], "ports": [{"port": 8000}], "environmentVariables": [],
        "resources": {"requests": {"memoryInGB": 1.5, "cpu": 1.0}},
    }
    address: Json = {"ports": [{"protocol": "TCP", "port": 8000}], "type": "Public"}
    if state == "Running":
        octets = zlib.crc32(group.name.encode()).to_bytes(4, "big")
        address["ip"] = f"20.{octets[1]}.{octets[2]}.{octets[3]}"
    properties: Json = {
        "sku": "Standard",
        "provisioningState": provisioning,
        "containers": [{"name": "mycontainerprofile", "properties": container}],
        "initContainers": [],
        "imageRegistryCredentials": [],
        "restartPolicy": "Always",
        "ipAddress": address,
        "osType": "Linux",
    }
    if since(api_version, "2025-09-01"):
        properties["isCreatedFromStandbyPool"] = group.pool is not None
    if with_instance_view:
        container["instanceView"] = _container_instance_view(group, container_state, wall)
        properties["instanceView"] = {"events": _group_events(group, state, wall), "state": state}
    body: Json = {
        "id": container_group_id(group),
        "name": group.name,
        "type": "Microsoft.ContainerInstance/containerGroups",
        "location": group.location,
        "tags": group.tags,
        "properties": properties,
    }
    if group.zone is not None:
        body["zones"] = [group.zone]
    return body


def virtual_machine_id(vm: VirtualMachine) -> str:
    """Resource id of a VM."""
    return (f"/subscriptions/{vm.subscription_id}/resourceGroups/{vm.resource_group}"
            f"/providers/Microsoft.Compute/virtualMachines/{vm.name}")


def standby_virtual_machine(pool: VirtualMachinePool, vm: VirtualMachine, wall: Wall) -> Json:
    """One entry of .../standbyVirtualMachinePools/{pool}/standbyVirtualMachines."""
    return {
        "id": f"{pool_id(pool)}/standbyVirtualMachines/{vm.name}",
        "name": vm.name,
        "type": f"{STANDBY}/{pool.resource_type}/standbyVirtualMachines",
        "systemData": system_data(wall(vm.created_at)),
        "properties": {"virtualMachineResourceId": virtual_machine_id(vm), "provisioningState": "Succeeded"},
    }


_POWER_STATES = {  # VM state -> (PowerState code, display status)
    "Starting": ("starting", "VM starting"),
    "Running": ("running", "VM running"),
    "Deallocating": ("deallocating", "VM deallocating"),
    "Deallocated": ("deallocated", "VM deallocated"),
    "Hibernating": ("deallocating", "VM deallocating"),
    "Hibernated": ("deallocated", "VM deallocated"),
}


def scale_set_id(vm: VirtualMachine) -> str:
    """Resource id of the scale set a VM belongs to."""
    return (f"/subscriptions/{vm.subscription_id}/resourceGroups/{vm.resource_group}"
            f"/providers/Microsoft.Compute/virtualMachineScaleSets/{vm.scale_set_name}")


def virtual_machine(vm: VirtualMachine, with_instance_view: bool, wall: Wall) -> Json:
    """An item of GET .../virtualMachines?$filter='virtualMachineScaleSet/id' eq '...'(&$expand=instanceView)."""
    properties: Json = {"virtualMachineScaleSet": {"id": scale_set_id(vm)},
                        "provisioningState": "Creating" if vm.state == "Creating" else "Succeeded"}
    if with_instance_view:
        properties["instanceView"] = vm_instance_view(vm, wall)
    body: Json = {"id": virtual_machine_id(vm), "name": vm.name, "type": "Microsoft.Compute/virtualMachines",
                  "location": vm.location, "properties": properties}
    if vm.zone is not None:
        body["zones"] = [vm.zone]
    return body


def vm_instance_view(vm: VirtualMachine, wall: Wall) -> Json:
    """GET .../virtualMachines/{vm}/instanceView."""
    created = rfc3339(wall(vm.created_at))
    if vm.state == "Creating":
        statuses: list[Json] = [{"code": "ProvisioningState/creating", "level": "Info",
                                 "displayStatus": "Creating", "time": created}]
    else:
        power, display = _POWER_STATES[vm.state]
        statuses = [
            {"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded",
             "time": created},
            {"code": f"PowerState/{power}", "level": "Info", "displayStatus": display},
        ]
        if vm.state.startswith("Hibernat"):
            statuses.append({"code": f"HibernationState/{vm.state}", "level": "Info", "displayStatus": vm.state})
    return {"computerName": vm.name, "osName": "ubuntu", "hyperVGeneration": "V2",
            "isVMInStandbyPool": vm.pool is not None, "bootDiagnostics": {}, "statuses": statuses}
