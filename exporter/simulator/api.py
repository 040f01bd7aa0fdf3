"""ARM semantics: authentication, throttling, api-versions, lookups, paging and error codes."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from . import shapes
from .entities import ContainerGroupPool, Pool
from .reply import Reply, json_reply
from .routes import Route, parse, subscription_of
from .world import Simulator

_T = TypeVar("_T")
_LOGIN = "https://login.microsoftonline.com/common"
_POOL_TYPES = {"container_group": shapes.CONTAINER_POOLS, "virtual_machine": shapes.VM_POOLS}


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
        reply = self._route(route, path, query, base_url)
        reply.headers["x-ms-ratelimit-remaining-subscription-reads"] = str(decision.remaining)
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
        sim, api_version = self._sim, query["api-version"]
        if route.operation == "pool_list":
            assert route.kind is not None
            pools = sim.pools(route.kind, route.subscription_id, route.resource_group)
            return self._page([(shapes.pool_id(p).lower(), p) for p in pools],
                              lambda p: self._pool_body(p, api_version), path, query, base_url)
        if route.operation == "container_group_list":
            groups = sim.container_groups(route.subscription_id, route.resource_group)
            return self._page([(shapes.container_group_id(g).lower(), g) for g in groups],
                              lambda g: shapes.container_group(g, False, sim.wall), path, query, base_url)
        if route.operation == "container_group":
            assert route.name is not None and route.resource_group is not None
            group = sim.container_group(route.subscription_id, route.resource_group, route.name)
            if group is None:
                return _not_found("Microsoft.ContainerInstance/containerGroups", route.name, route.resource_group)
            return json_reply(200, shapes.container_group(group, True, sim.wall))
        assert route.kind is not None and route.name is not None and route.resource_group is not None
        pool = sim.pool(route.kind, route.subscription_id, route.resource_group, route.name)
        if pool is None:
            return _not_found(f"{shapes.STANDBY}/{_POOL_TYPES[route.kind]}", route.name, route.resource_group)
        if route.operation == "pool":
            return json_reply(200, self._pool_body(pool, api_version))
        if route.operation == "runtime_view" and (route.child or "").lower() == "latest":
            body = shapes.runtime_view(pool, api_version, sim.wall(sim.clock()), sim.lowercase_states_now())
            return json_reply(200, body)
        return _not_found(f"{shapes.STANDBY}/{_POOL_TYPES[route.kind]}/runtimeViews", route.child or "",
                          route.resource_group)

    def _pool_body(self, pool: Pool, api_version: str) -> dict[str, Any]:
        assert isinstance(pool, ContainerGroupPool)
        return shapes.container_group_pool(pool, api_version, self._sim.wall)

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
