"""ARM semantics: authentication, throttling, api-versions, lookups, paging and error codes."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from . import shapes
from .entities import POOL_RESOURCE_TYPES, ContainerGroupPool, Pool, VirtualMachinePool
from .reply import Reply, json_reply
from .routes import Route, parse, subscription_of
from .world import Simulator

_T = TypeVar("_T")
_LOGIN = "https://login.microsoftonline.com/common"
_SCALE_SET_FILTER = re.compile(r"^'?virtualMachineScaleSet/id'?\s+eq\s+'([^']+)'$", re.IGNORECASE)


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Reply:
    """An ARM error reply."""
    return json_reply(status, shapes.arm_error(code, message), headers)


def _unauthorized(code: str, message: str) -> Reply:
    challenge = f'Bearer authorization_uri="{_LOGIN}", error="invalid_token", error_description="{message}"'
    return error(401, code, message, {"WWW-Authenticate": challenge})


def _not_found(resource_type: str, name: str, resource_group: str | None) -> Reply:
    return error(404, "ResourceNotFound",
                 f"The Resource '{resource_type}/{name}' under resource group '{resource_group}' was not found. "
                 "For more details please go to https://aka.ms/ARMResourceNotFoundFix")


class ArmApi:
    """Answers ARM requests from the simulator's world."""

    def __init__(self, sim: Simulator) -> None:
        self._sim = sim

    def handle(self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str],
               base_url: str) -> Reply:
        """Answer one request for a /subscriptions/... path (already URL-decoded, without query)."""
        scheme, _, token = (headers.get("Authorization") or "").partition(" ")
        if not scheme:
            return _unauthorized("AuthenticationFailed",
                                 "Authentication failed. The 'Authorization' header is missing.")
        if scheme.lower() != "bearer" or not token.strip():
            return _unauthorized("AuthenticationFailed",
                                 "Authentication failed. The 'Authorization' header is not in the correct format.")
        problem = self._sim.tokens.check(token.strip())
        if problem is not None:
            return _unauthorized("InvalidAuthenticationToken", problem)
        if method != "GET":
            return error(405, "MethodNotAllowed", f"The simulator serves only GET, not {method}.")
        route = parse(path)
        decision = self._sim.throttle.take(subscription_of(path) or "")
        if not decision.allowed:
            return error(429, "TooManyRequests",
                         "The request is being throttled as the limit has been reached for operation type - Read.",
                         {"Retry-After": str(decision.retry_after)})
        canned = self._sim.verbatim.get((path.lower(), query.get("api-version", "")))
        reply = Reply(200, canned) if canned is not None else self._route(route, path, query, base_url)
        reply.headers["x-ms-ratelimit-remaining-subscription-reads"] = str(decision.remaining)
        reply.headers["x-ms-ratelimit-remaining-subscription-global-reads"] = str(decision.global_remaining)
        if route is not None and route.provider == "compute":
            reply.headers["x-ms-ratelimit-remaining-resource"] = self._sim.compute_limits.take(route.subscription_id)
        return reply

    def _route(self, route: Route | None, path: str, query: Mapping[str, str], base_url: str) -> Reply:
        if route is None:
            return error(404, "InvalidResourceType", f"The resource type of '{path}' could not be found.")
        problem = route.api_version_problem(query.get("api-version"))
        if problem is not None:
            return error(400, *problem)
        with self._sim.lock:
            if not self._sim.subscription_known(route.subscription_id):
                return error(404, "SubscriptionNotFound", f"The subscription '{route.subscription_id}' could not be found.")
            if route.resource_group and not self._sim.resource_group_known(route.subscription_id, route.resource_group):
                return error(404, "ResourceGroupNotFound", f"Resource group '{route.resource_group}' could not be found.")
            return self._dispatch(route, path, query, base_url)

    def _dispatch(self, route: Route, path: str, query: Mapping[str, str], base_url: str) -> Reply:
        handlers = {
            "pool_list": self._pool_list,
            "container_group_list": self._container_group_list,
            "container_group": self._container_group,
            "vm_instance_view": self._vm_instance_view,
            "vm_scale_set_list": self._vm_scale_set_list,
        }
        return handlers.get(route.operation, self._in_pool)(route, path, query, base_url)

    def _pool_list(self, route: Route, path: str, query: Mapping[str, str], base_url: str) -> Reply:
        assert route.kind is not None
        pools = self._sim.pools(route.kind, route.subscription_id, route.resource_group)
        return self._page([(shapes.pool_id(pool).lower(), pool) for pool in pools],
                          lambda pool: self._pool_body(pool, query["api-version"]), path, query, base_url)

    def _container_group_list(self, route: Route, path: str, query: Mapping[str, str], base_url: str) -> Reply:
        groups = self._sim.container_groups(route.subscription_id, route.resource_group)
        return self._page([(shapes.container_group_id(group).lower(), group) for group in groups],
                          lambda group: shapes.container_group(group, False, self._sim.wall, query["api-version"]),
                          path, query, base_url)

    def _container_group(self, route: Route, path: str, query: Mapping[str, str], base_url: str) -> Reply:
        assert route.name is not None and route.resource_group is not None
        group = self._sim.container_group(route.subscription_id, route.resource_group, route.name)
        if group is None:
            return _not_found("Microsoft.ContainerInstance/containerGroups", route.name, route.resource_group)
        return json_reply(200, shapes.container_group(group, True, self._sim.wall, query["api-version"]))

    def _vm_instance_view(self, route: Route, path: str, query: Mapping[str, str], base_url: str) -> Reply:
        assert route.name is not None and route.resource_group is not None
        vm = self._sim.virtual_machine(route.subscription_id, route.resource_group, route.name)
        if vm is None:
            return _not_found("Microsoft.Compute/virtualMachines", route.name, route.resource_group)
        return json_reply(200, shapes.vm_instance_view(vm, self._sim.wall))

    def _vm_scale_set_list(self, route: Route, path: str, query: Mapping[str, str], base_url: str) -> Reply:
        """VirtualMachines_List: with $filter on a scale set id, that scale set's VMs; $expand=instanceView only with it."""
        assert route.resource_group is not None
        match = _SCALE_SET_FILTER.match(query.get("$filter", "").strip())
        expand = query.get("$expand")
        if expand is not None and (expand.lower() != "instanceview" or match is None):
            return error(400, "InvalidParameter", "The $expand=instanceView option can only be specified with a valid $filter option.")
        if match is None:
            vms = self._sim.virtual_machines_in(route.subscription_id, route.resource_group)
        else:
            parts = match.group(1).strip("/").split("/")
            if len(parts) != 8 or parts[6].lower() != "virtualmachinescalesets":
                return error(400, "InvalidParameter", f"The $filter value '{query['$filter']}' is not a scale set id filter.")
            vms = self._sim.scale_set_virtual_machines(parts[1], parts[3], parts[7])
        with_view = expand is not None
        return self._page([(shapes.virtual_machine_id(vm).lower(), vm) for vm in vms],
                          lambda vm: shapes.virtual_machine(vm, with_view, self._sim.wall), path, query, base_url)

    def _in_pool(self, route: Route, path: str, query: Mapping[str, str], base_url: str) -> Reply:
        """A pool, its runtime view, its standby VMs or one of them."""
        assert route.kind is not None and route.name is not None and route.resource_group is not None
        sim, child = self._sim, route.child or ""
        pool = sim.pool(route.kind, route.subscription_id, route.resource_group, route.name)
        pool_type = f"{shapes.STANDBY}/{POOL_RESOURCE_TYPES[route.kind]}"
        if pool is None:
            return _not_found(pool_type, route.name, route.resource_group)
        if route.operation == "pool":
            return json_reply(200, self._pool_body(pool, query["api-version"]))
        if route.operation == "runtime_view":
            if child.lower() != "latest":
                return _not_found(f"{pool_type}/{route.name}/runtimeViews", child, route.resource_group)
            lowercase = sim.lowercase_states_now()
            return json_reply(200, shapes.runtime_view(pool, query["api-version"], sim.wall(sim.clock()), lowercase,
                                                       sim.wall))
        assert isinstance(pool, VirtualMachinePool)
        if route.operation == "vm_list":
            return self._page(sorted(pool.members.items()),
                              lambda vm: shapes.standby_virtual_machine(pool, vm, sim.wall), path, query, base_url)
        vm = pool.members.get(child.lower())
        if vm is None:
            return _not_found(f"{pool_type}/{route.name}/standbyVirtualMachines", child, route.resource_group)
        return json_reply(200, shapes.standby_virtual_machine(pool, vm, sim.wall))

    def _pool_body(self, pool: Pool, api_version: str) -> dict[str, Any]:
        if isinstance(pool, ContainerGroupPool):
            return shapes.container_group_pool(pool, api_version, self._sim.wall)
        assert isinstance(pool, VirtualMachinePool)
        return shapes.virtual_machine_pool(pool, api_version, self._sim.wall)

    def _page(self, items: list[tuple[str, _T]], render: Callable[[_T], dict[str, Any]], path: str,
              query: Mapping[str, str], base_url: str) -> Reply:
        """One page of a list, keyset-paged by ``items`` keys so every item appears exactly once."""
        after = ""
        if "$skiptoken" in query:
            try:
                after = base64.urlsafe_b64decode(query["$skiptoken"].encode()).decode()
            except (binascii.Error, UnicodeDecodeError, ValueError):
                return error(400, "InvalidSkipToken", "The $skiptoken query parameter is invalid.")
        remaining = sorted((item for item in items if item[0] > after), key=lambda item: item[0])
        chunk = remaining[:self._sim.page_size]
        body: dict[str, Any] = {"value": [render(entity) for _, entity in chunk]}
        if len(remaining) > len(chunk):
            params = {name: value for name, value in query.items() if name != "$skiptoken"}
            params["$skiptoken"] = base64.urlsafe_b64encode(chunk[-1][0].encode()).decode()
            body["nextLink"] = f"{base_url}{quote(path)}?{urlencode(params, safe='$')}"
        return json_reply(200, body)
