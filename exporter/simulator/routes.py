"""Case-insensitive parsing of ARM paths into the operations the simulator serves."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from .entities import POOL_RESOURCE_TYPES, VIRTUAL_MACHINE

STANDBY_API_VERSIONS = (
    "2023-12-01-preview", "2024-03-01-preview", "2024-03-01", "2025-03-01", "2025-10-01", "2026-04-01",
)
_DATED_API_VERSION = re.compile(r"^20\d\d-\d\d-\d\d(-preview)?$")
_POOL_KINDS = {resource_type.lower(): kind for kind, resource_type in POOL_RESOURCE_TYPES.items()}


@dataclass(frozen=True)
class Route:
    """One recognised ARM request; names keep the caller's casing."""

    operation: str  # pool_list, pool, runtime_view, vm_list, standby_vm, container_group_list, ...
    provider: str  # "standby" | "containerinstance" | "compute": decides the accepted api-versions
    subscription_id: str
    resource_group: str | None = None
    kind: str | None = None  # standby pools: CONTAINER_GROUP | VIRTUAL_MACHINE
    name: str | None = None  # pool, container group or VM name
    child: str | None = None  # runtime view or standby VM name

    def api_version_problem(self, api_version: str | None) -> tuple[str, str] | None:
        """(code, message) when the api-version is missing or not served for this provider, else None."""
        if not api_version:
            return "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests."
        if self.provider == "standby":
            if api_version in STANDBY_API_VERSIONS:
                return None
            supported = ", ".join(STANDBY_API_VERSIONS)
        elif _DATED_API_VERSION.match(api_version):
            return None
        else:
            supported = "a date such as 2025-09-01"
        return "InvalidApiVersionParameter", f"The api-version '{api_version}' is invalid. The supported versions are '{supported}'."


def subscription_of(path: str) -> str | None:
    """The lower-cased subscription id of a /subscriptions/... path, else None."""
    parts = [part for part in path.split("/") if part]
    if len(parts) >= 2 and parts[0].lower() == "subscriptions":
        return parts[1].lower()
    return None


def parse(path: str) -> Route | None:
    """The route for an (unquoted) ARM path, or None when the simulator does not serve it."""
    parts = [part for part in path.split("/") if part]
    lower = [part.lower() for part in parts]
    if len(parts) < 5 or lower[0] != "subscriptions":
        return None
    subscription, rest = parts[1], parts[2:]
    resource_group = None
    if lower[2] == "resourcegroups":
        resource_group, rest = parts[3], parts[4:]
    if len(rest) < 3 or rest[0].lower() != "providers":
        return None
    provider, resource_type, tail = rest[1].lower(), rest[2].lower(), rest[3:]
    route = partial(Route, subscription_id=subscription, resource_group=resource_group)
    if provider == "microsoft.standbypool" and resource_type in _POOL_KINDS:
        return _standby(route, resource_group is not None, _POOL_KINDS[resource_type], tail)
    if provider == "microsoft.containerinstance" and resource_type == "containergroups":
        if not tail:
            return route("container_group_list", "containerinstance")
        if len(tail) == 1 and resource_group:
            return route("container_group", "containerinstance", name=tail[0])
    if provider == "microsoft.compute" and resource_type == "virtualmachines" and resource_group:
        if not tail:
            return route("vm_scale_set_list", "compute")
        if len(tail) == 2 and tail[1].lower() == "instanceview":
            return route("vm_instance_view", "compute", name=tail[0])
    return None


def _standby(route: Callable[..., Route], in_resource_group: bool, kind: str, tail: list[str]) -> Route | None:
    lower = [part.lower() for part in tail]
    if not tail:
        return route("pool_list", "standby", kind=kind)
    if not in_resource_group:
        return None
    name = tail[0]
    if len(tail) == 1:
        return route("pool", "standby", kind=kind, name=name)
    if len(tail) == 3 and lower[1] == "runtimeviews":
        return route("runtime_view", "standby", kind=kind, name=name, child=tail[2])
    if kind == VIRTUAL_MACHINE and lower[1] == "standbyvirtualmachines":
        if len(tail) == 2:
            return route("vm_list", "standby", kind=kind, name=name)
        if len(tail) == 3:
            return route("standby_vm", "standby", kind=kind, name=name, child=tail[2])
    return None
