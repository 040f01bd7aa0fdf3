"""Where things are in ARM: resource paths (every name one escaped path segment) and the role action each
read needs (named in the log, and by ``--check-access``, when ARM answers 403)."""

from __future__ import annotations

from urllib.parse import quote

from .config import PoolRef
from .model import PoolKind

# The collection of pools of each kind, under a subscription or a resource group.
POOL_COLLECTIONS = {
    PoolKind.CONTAINER_GROUP: "providers/Microsoft.StandbyPool/standbyContainerGroupPools",
    PoolKind.VIRTUAL_MACHINE: "providers/Microsoft.StandbyPool/standbyVirtualMachinePools",
}
CONTAINER_GROUPS = "providers/Microsoft.ContainerInstance/containerGroups"

# The role action each read (by its ``operation`` name) needs.
REQUIRED_ACTIONS = {
    "runtime_view": "Microsoft.StandbyPool/{provider}/runtimeViews/read",
    "pool_list": "Microsoft.StandbyPool/{provider}/read",
    "container_group_list": "Microsoft.ContainerInstance/containerGroups/read",
    "container_group": "Microsoft.ContainerInstance/containerGroups/read",
    "vm_list": "Microsoft.StandbyPool/standbyVirtualMachinePools/standbyVirtualMachines/read",
    "vm_instance_view": "Microsoft.Compute/virtualMachines/instanceView/read",
    "vm_scale_set_list": "Microsoft.Compute/virtualMachines/read",
}


def segment(name: str) -> str:
    """One URL path segment: names from ARM or the configuration never become a query, fragment or another path."""
    return quote(name, safe="")


def resource_url_path(resource_id: str) -> str:
    """A resource id from ARM as a URL path, each segment escaped."""
    return "/".join(segment(part) for part in resource_id.split("/"))


def resource_group_path(subscription_id: str, resource_group: str) -> str:
    return f"/subscriptions/{segment(subscription_id)}/resourceGroups/{segment(resource_group)}"


def pool_collection_path(subscription_id: str, resource_group: str | None, kind: PoolKind) -> str:
    """The paged list of pools of ``kind`` in a resource group, or in the whole subscription when it is None."""
    scope = f"/subscriptions/{segment(subscription_id)}" if resource_group is None else resource_group_path(subscription_id, resource_group)
    return f"{scope}/{POOL_COLLECTIONS[kind]}"


def pool_path(ref: PoolRef) -> str:
    return f"{pool_collection_path(ref.subscription_id, ref.resource_group, ref.kind)}/{segment(ref.name)}"


def container_groups_path(subscription_id: str, resource_group: str) -> str:
    return f"{resource_group_path(subscription_id, resource_group)}/{CONTAINER_GROUPS}"


def container_group_path(subscription_id: str, resource_group: str, name: str) -> str:
    return f"{container_groups_path(subscription_id, resource_group)}/{segment(name)}"


def missing_role_hint(operation: str, kind: PoolKind) -> str:
    provider = POOL_COLLECTIONS[kind].rsplit("/", 1)[-1]
    action = REQUIRED_ACTIONS.get(operation, "the exporter's read actions").format(provider=provider)
    return f"the exporter's identity lacks {action}: assign the role in deploy/azure/role.json (README: least-privilege role)"
