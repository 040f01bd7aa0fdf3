"""The exporter's ARM reads, one method each: path, api-version, operation name and parser.

Every read returns its parsed result or the :class:`~exporter.arm.ArmError` that explains why not; none
raises, so a failed read costs only the part of a pool it belongs to. A malformed item of a list costs
only itself and is named in one log line the first time it is seen.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeAlias, TypeVar, Union

from . import model
from .arm import ArmClient, ArmError, ErrorKind
from .config import PoolRef
from .resources import (
    container_group_path,
    container_groups_path,
    pool_collection_path,
    pool_path,
    resource_group_path,
    resource_url_path,
)

log = logging.getLogger("exporter.poller")

T = TypeVar("T")
Outcome: TypeAlias = Union[T, ArmError]  # noqa: UP007 -- a read's result, or why it failed (a generic alias needs Union)


class WarnOnce:
    """A bounded memory of the malformed list items already logged, so each is named once and not every cycle."""

    def __init__(self, limit: int = 4096) -> None:
        self._limit = limit
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def first_time(self, key: str) -> bool:
        with self._lock:
            if key in self._seen:
                self._seen.move_to_end(key)
                return False
            self._seen[key] = None
            if len(self._seen) > self._limit:
                self._seen.popitem(last=False)
            return True


def attempt(read: Callable[[], T], operation: str) -> Outcome[T]:
    """``read()``, or the ArmError it raised; a body of the wrong shape is a bad response."""
    try:
        return read()
    except ArmError as error:
        return error
    except model.ModelError as error:
        return ArmError(ErrorKind.BAD_RESPONSE, str(error), operation=operation)
    except Exception as error:  # a parser bug must cost one pool one cycle, never the whole snapshot
        log.error("unexpected error while reading ARM", exc_info=True, extra={"operation": operation})
        return ArmError(ErrorKind.BAD_RESPONSE, f"unexpected {type(error).__name__} while parsing", operation=operation)


class ArmReads:
    """The reads of a poll cycle and of discovery, at the api-versions ``versions()`` names now."""

    def __init__(self, client: ArmClient, versions: Callable[[], Mapping[str, str]]) -> None:
        self._client = client
        self._versions = versions
        self._warned = WarnOnce()

    def _list(self, path: str, provider: str, operation: str, subscription_id: str, parse: Callable[[object], T]) -> Outcome[list[T]]:
        return attempt(lambda: self._parse_items(
            self._client.iter_list(path, self._versions()[provider], operation=operation, subscription_id=subscription_id),
            parse, operation, path,
        ), operation)

    def _parse_items(self, items: Iterator[object], parse: Callable[[object], T], operation: str, path: str) -> list[T]:
        """Every well-formed item of a list; a malformed one costs only itself, logged the first time it is seen."""
        parsed: list[T] = []
        for item in items:
            try:
                parsed.append(parse(item))
            except model.ModelError as error:
                name = model.item_name(item)
                if self._warned.first_time(f"{operation}\n{path}\n{name}\n{error}"):
                    log.warning("malformed list item skipped", extra={"operation": operation, "list": path, "item": name, "error": str(error)})
        return parsed

    def pools_of_subscription(self, subscription_id: str, kind: model.PoolKind) -> Outcome[list[model.ListedPool]]:
        """Every pool of ``kind`` in the subscription (discovery)."""
        return self._list(pool_collection_path(subscription_id, None, kind), "standby_pool", "pool_list", subscription_id,
                          model.parse_listed_pool)

    def pools_of_resource_group(self, ref: PoolRef) -> Outcome[list[model.Pool]]:
        """Every pool of this kind in the pool's resource group: one paged list instead of a GET per pool."""
        return self._list(pool_collection_path(ref.subscription_id, ref.resource_group, ref.kind), "standby_pool", "pool_list",
                          ref.subscription_id, model.parse_pool)

    def runtime_view(self, ref: PoolRef) -> Outcome[model.RuntimeView]:
        return attempt(lambda: model.parse_runtime_view(
            self._client.get(f"{pool_path(ref)}/runtimeViews/latest", self._versions()["standby_pool"], operation="runtime_view",
                             subscription_id=ref.subscription_id),
            model.POOL_STATES[ref.kind],
        ), "runtime_view")

    def container_groups(self, subscription_id: str, resource_group: str) -> Outcome[list[model.MemberSummary]]:
        return self._list(container_groups_path(subscription_id, resource_group), "container_instance", "container_group_list",
                          subscription_id, model.parse_member_summary)

    def container_group(self, ref: PoolRef, name: str) -> Outcome[model.Member]:
        return attempt(lambda: model.parse_member(
            self._client.get(container_group_path(ref.subscription_id, ref.resource_group, name),
                             self._versions()["container_instance"], operation="container_group", subscription_id=ref.subscription_id)
        ), "container_group")

    def standby_virtual_machines(self, ref: PoolRef) -> Outcome[list[model.VirtualMachineRef]]:
        return self._list(f"{pool_path(ref)}/standbyVirtualMachines", "standby_pool", "vm_list", ref.subscription_id,
                          model.parse_virtual_machine_ref)

    def virtual_machine(self, subscription_id: str, vm: model.VirtualMachineRef, pool_vm_state: str | None) -> Outcome[model.Member]:
        return attempt(lambda: model.parse_virtual_machine(
            self._client.get(f"{resource_url_path(vm.resource_id)}/instanceView", self._versions()["compute"],
                             operation="vm_instance_view", subscription_id=subscription_id),
            vm.name, pool_vm_state,
        ), "vm_instance_view")

    def scale_set_virtual_machines(self, subscription_id: str, scale_set_id: str) -> Outcome[dict[str, Mapping[str, Any]]]:
        """Instance views of every VM of a Flexible scale set, pooled ones included, by lower-cased resource id: one
        paged list (``$expand=instanceView`` is only accepted with this ``$filter``); VMs lacking the fields left out."""
        parts = scale_set_id.split("/")
        path = f"{resource_group_path(parts[2], parts[4])}/providers/Microsoft.Compute/virtualMachines"
        query = {"$filter": f"'virtualMachineScaleSet/id' eq '{scale_set_id}'", "$expand": "instanceView"}

        def read() -> dict[str, Mapping[str, Any]]:
            items = self._client.iter_list(path, self._versions()["compute"], operation="vm_scale_set_list",
                                           subscription_id=subscription_id, query=query)
            return {vm_id: view for vm_id, view in self._parse_items(items, model.parse_scale_set_vm, "vm_scale_set_list", path)
                    if view is not None}
        return attempt(read, "vm_scale_set_list")
