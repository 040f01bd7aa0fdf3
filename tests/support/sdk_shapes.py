"""Deserialise ARM JSON with Microsoft's own Python SDK models and list what they do not model.

Two generations of SDK model are in use: TypeSpec-generated ``model_base.Model`` (azure-mgmt-standbypool 2.x,
azure-mgmt-compute 39) keeps the raw JSON and knows each field's REST name; AutoRest ``msrest`` models
(azure-mgmt-containerinstance 10.x) map attributes to possibly dotted REST keys (``properties.provisioningState``).
Both are walked key by key: every JSON key must be a modelled field, and its value must have the field's type
(msrest's deserializer checks that itself; TypeSpec models hand primitives back as they came, so the walk checks
each against the field's annotation).
"""

from __future__ import annotations

import datetime
import enum
import functools
import importlib
import re
import types
import typing
from collections.abc import Iterator, Mapping
from typing import Any

from azure.mgmt.compute._utils.model_base import Model as ComputeModel
from azure.mgmt.containerinstance._serialization import Model as MsrestModel
from azure.mgmt.standbypool._utils.model_base import Model as StandbyModel
from azure.mgmt.standbypool._utils.model_base import _deserialize_datetime

_TYPESPEC_MODELS = (StandbyModel, ComputeModel)
_DOT = re.compile(r"(?<!\\)\.")


def unmodelled(model: type, body: Mapping[str, Any]) -> list[str]:
    """JSON paths (list items as ``[]``) of ``body`` that ``model`` does not model; raises if a value fails to
    deserialise."""
    if issubclass(model, MsrestModel):
        instance: Any = model.deserialize(dict(body))
    else:
        instance = model(body)
    return sorted(set(_walk(instance, body, "")))


def json_paths(value: object, prefix: str = "") -> Iterator[str]:
    """Every key path in ``value`` (list items as ``[]``; map-typed values such as ``tags`` included)."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            yield path
            yield from json_paths(item, path)
    elif isinstance(value, list):
        for item in value:
            yield from json_paths(item, f"{prefix}[]")


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _walk(value: object, raw: object, path: str, annotation: object = None) -> Iterator[str]:
    if isinstance(value, _TYPESPEC_MODELS):
        assert isinstance(raw, Mapping), path
        fields = {rest_field._rest_name: attr for attr, rest_field in type(value)._attr_to_rest_field.items()}
        hints = _hints(type(value))
        for key, item in raw.items():
            if key not in fields:
                yield _join(path, key)
            else:
                yield from _walk(getattr(value, fields[key]), item, _join(path, key), hints.get(fields[key]))
    elif isinstance(value, MsrestModel):
        assert isinstance(raw, Mapping), path
        yield from _walk_msrest(value, _msrest_tree(type(value)), raw, path)
    elif isinstance(value, list):
        assert isinstance(raw, list) and len(raw) == len(value), path
        item_annotation = _element(annotation, list)
        for item, raw_item in zip(value, raw, strict=True):
            yield from _walk(item, raw_item, f"{path}[]", item_annotation)
    elif isinstance(value, Mapping):  # a map-typed field (tags): its keys are data, not fields
        assert isinstance(raw, Mapping), path
        item_annotation = _element(annotation, dict)
        for key, item in raw.items():
            yield from _walk(value[key], item, f"{path}.{{}}", item_annotation)
    elif annotation is not None:
        _check_primitive(annotation, raw, path)


@functools.cache
def _hints(model: type) -> dict[str, Any]:
    """Resolved field annotations of a TypeSpec model (they name sibling models as ``_models.X``)."""
    models = importlib.import_module(model.__module__.rsplit(".", 1)[0])
    return typing.get_type_hints(model, localns={"_models": models})


def _options(annotation: object) -> tuple[object, ...]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return tuple(option for option in typing.get_args(annotation) if option is not type(None))
    return (annotation,)


def _element(annotation: object, container: type) -> object:
    """The item annotation of a ``list[X]`` / ``dict[str, X]`` field (None when unknown)."""
    for option in _options(annotation):
        if typing.get_origin(option) is container:
            return typing.get_args(option)[-1]
    return None


def _check_primitive(annotation: object, raw: object, path: str) -> None:
    """``raw`` (JSON) is a valid value of one of the annotation's primitive types."""
    for option in _options(annotation):
        if option is bool and isinstance(raw, bool):
            return
        if option is int and isinstance(raw, int) and not isinstance(raw, bool):
            return
        if option is float and isinstance(raw, (int, float)) and not isinstance(raw, bool):
            return
        if (option is str or (isinstance(option, type) and issubclass(option, enum.Enum))) and isinstance(raw, str):
            return
        if option is datetime.datetime and isinstance(raw, str):
            _deserialize_datetime(raw)  # raises when it is not RFC 3339
            return
        if option is typing.Any:
            return
    raise AssertionError(f"{path}: {raw!r} is not a valid {annotation}")


def _msrest_tree(model: type) -> dict[str, Any]:
    """REST key tree of an msrest model: leaves are attribute names (``properties.x`` nests under ``properties``)."""
    tree: dict[str, Any] = {}
    for attr, info in model._attribute_map.items():  # type: ignore[attr-defined]
        parts = [part.replace("\\.", ".") for part in _DOT.split(info["key"])]
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = attr
    return tree


def _walk_msrest(instance: MsrestModel, tree: Mapping[str, Any], raw: Mapping[str, Any], path: str) -> Iterator[str]:
    for key, item in raw.items():
        target = tree.get(key)
        if target is None:
            yield _join(path, key)
        elif isinstance(target, dict):
            assert isinstance(item, Mapping), _join(path, key)
            yield from _walk_msrest(instance, target, item, _join(path, key))
        else:
            yield from _walk(getattr(instance, target), item, _join(path, key))
