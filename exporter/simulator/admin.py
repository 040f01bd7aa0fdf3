"""Out-of-process control: /_simulator/... endpoints (no token needed) mirroring the Python API."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Any

from .faults import Fault
from .reply import Reply, json_reply
from .world import Simulator

PREFIX = "/_simulator/"


def _pool_action(act: Callable[[Simulator, str, str, str, dict[str, Any]], object]) -> Callable[[Simulator, dict[str, Any]], object]:
    def run(sim: Simulator, data: dict[str, Any]) -> object:
        return act(sim, data["subscription_id"], data["resource_group"], data["pool"], data)
    return run


_POSTS: dict[str, Callable[[Simulator, dict[str, Any]], object]] = {
    "faults": lambda sim, data: sim.faults.add(Fault.from_json(data)),
    "tick": lambda sim, data: sim.tick(),
    "revoke_tokens": lambda sim, data: sim.revoke_tokens(),
    "reset_requests": lambda sim, data: sim.reset_requests(),
    "deplete": _pool_action(lambda sim, sub, rg, pool, data: sim.deplete(sub, rg, pool)),
    "claim": _pool_action(lambda sim, sub, rg, pool, data: sim.claim(sub, rg, pool, int(data.get("count", 1)))),
    "refill": _pool_action(lambda sim, sub, rg, pool, data: sim.set_refill(sub, rg, pool, bool(data["enabled"]))),
    "health": _pool_action(lambda sim, sub, rg, pool, data: sim.set_health(sub, rg, pool, data.get("code"))),
    "delete_pool": _pool_action(lambda sim, sub, rg, pool, data: sim.delete_pool(sub, rg, pool)),
    "verbatim": lambda sim, data: sim.serve_verbatim(data["path"], data["api_version"], json.dumps(data["body"]).encode()),
}


def handle_admin(sim: Simulator, method: str, path: str, query: Mapping[str, str], body: bytes) -> Reply:
    """Answer one admin request; POST bodies are JSON objects."""
    action = path.lower().rstrip("/")[len(PREFIX):]
    if method == "DELETE" and action == "faults":
        sim.faults.clear()
        return json_reply(200, {"ok": True})
    if not (method == "GET" and action == "requests" or method == "POST" and action in _POSTS):
        return json_reply(404, {"error": f"no admin endpoint {method} {path}"})
    try:
        if method == "GET":
            since = float(query.get("since", "-inf"))
            return json_reply(200, [asdict(record) for record in list(sim.requests) if record.time > since])
        data = json.loads(body or b"{}")
        if not isinstance(data, dict):
            raise ValueError("the body must be a JSON object")
        result = _POSTS[action](sim, data)
    except KeyError as exc:
        return json_reply(404, {"error": f"not found or missing field: {exc}"})
    except (ValueError, TypeError) as exc:
        return json_reply(400, {"error": str(exc)})
    return json_reply(200, {"ok": True, "result": result})
