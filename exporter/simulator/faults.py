"""Fault switches: make chosen simulator requests fail the way networks and ARM fail."""

from __future__ import annotations

import threading
from dataclasses import dataclass, fields
from http import HTTPStatus
from typing import Any

from .reply import Reply, json_reply
from .shapes import arm_error

_IDENTITY_MARKERS = ("msi", "identity")
DEFAULT_ERROR_CODES = {
    401: "InvalidAuthenticationToken", 403: "AuthorizationFailed", 404: "ResourceNotFound", 429: "TooManyRequests",
    500: "InternalServerError", 502: "BadGateway", 503: "ServiceUnavailable",
}


@dataclass(frozen=True)
class Fault:
    """One fault rule.

    It hits requests whose lower-cased path contains ``match`` (ends with it, when ``match`` ends in ``$``;
    token endpoints only when ``match`` names them, i.e. contains "msi" or "identity"), ``times`` times
    (None: until cleared).
    """

    match: str = ""
    status: int | None = None
    retry_after: int | None = None
    delay: float = 0.0
    body: bytes | None = None
    content_type: str = "application/json"
    reset: bool = False
    truncate: bool = False
    times: int | None = None
    error_code: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fault:
        """Build a fault from JSON fields (``body`` as a string); unknown fields raise ValueError."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        values = dict(data)
        if isinstance(values.get("body"), str):
            values["body"] = values["body"].encode()
        return cls(**values)

    def replaces_reply(self) -> bool:
        """True when the fault answers instead of the simulator (status or body given)."""
        return self.status is not None or self.body is not None

    def reply(self) -> Reply:
        """The reply that replaces the simulator's: ``body`` as is, else an ARM error for ``status``."""
        status = self.status or 200
        retry_after = self.retry_after if self.retry_after is not None else (1 if status == 429 else None)
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        if self.body is not None:
            return Reply(status, self.body, self.content_type, headers)
        code = self.error_code or DEFAULT_ERROR_CODES.get(status) or _phrase(status)
        return json_reply(status, arm_error(code, f"Simulated fault ({code})."), headers)

    def applies_to(self, path_lower: str, identity: bool) -> bool:
        """True when this fault matches a request path (already lower-cased)."""
        match = self.match.lower()
        if identity and not any(marker in match for marker in _IDENTITY_MARKERS):
            return False
        if match.endswith("$"):
            return path_lower.rstrip("/").endswith(match[:-1])
        return match in path_lower


class FaultSet:
    """Thread-safe ordered list of active faults; the first matching one with hits left wins."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: list[tuple[Fault, list[int | None]]] = []

    def add(self, fault: Fault) -> None:
        """Activate a fault (``times`` <= 0 activates nothing)."""
        if fault.times is not None and fault.times <= 0:
            return
        with self._lock:
            self._active.append((fault, [fault.times]))

    def clear(self) -> None:
        """Deactivate every fault."""
        with self._lock:
            self._active.clear()

    def take(self, path: str, identity: bool) -> Fault | None:
        """Return the fault for this request and use up one of its hits, or None."""
        path_lower = path.lower()
        with self._lock:
            for index, (fault, left) in enumerate(self._active):
                if not fault.applies_to(path_lower, identity):
                    continue
                if left[0] is not None:
                    left[0] -= 1
                    if left[0] <= 0:
                        del self._active[index]
                return fault
        return None


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.replace(" ", "")
    except ValueError:
        return "SimulatedFault"
