"""YAML configuration -> frozen, validated settings.

Every problem is collected with its dotted path (``pools[2].subscription_id: ...``) and raised
together as one :class:`ConfigError`, so an operator fixes a file in one pass.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import yaml

from .boundedfile import FileProblem, Problems, ProblemsError, load_yaml, read_bounded, short_repr
from .model import PoolKind

T = TypeVar("T")


@dataclass(frozen=True)
class Cloud:
    resource_manager_endpoint: str
    token_scope: str
    authority_host: str


CLOUDS: dict[str, Cloud] = {
    "AzurePublicCloud": Cloud(
        "https://management.azure.com", "https://management.azure.com/.default", "login.microsoftonline.com"
    ),
    "AzureChinaCloud": Cloud(
        "https://management.chinacloudapi.cn", "https://management.chinacloudapi.cn/.default", "login.chinacloudapi.cn"
    ),
    "AzureUSGovernment": Cloud(
        "https://management.usgovcloudapi.net", "https://management.core.usgovcloudapi.net/.default", "login.microsoftonline.us"
    ),
}

DEFAULT_API_VERSIONS: dict[str, str] = {
    "standby_pool": "2025-03-01",
    "container_instance": "2025-09-01",
    "compute": "2024-07-01",  # returns isVMInStandbyPool in a VM's instanceView
}

POOL_KINDS = tuple(PoolKind)

_SUBSCRIPTION_ID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_RESOURCE_GROUP = re.compile(r"^[-\w._()]{1,90}$")
_POOL_NAME = re.compile(r"^[a-zA-Z0-9-]{3,24}$")
_API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


class ConfigError(ProblemsError):
    """One or more configuration problems, each prefixed with its dotted path."""

    title = "invalid configuration"


@dataclass(frozen=True)
class PoolRef:
    """One standby pool to poll, identified as ARM identifies it (case-insensitively)."""

    subscription_id: str
    resource_group: str
    name: str
    kind: PoolKind = PoolKind.CONTAINER_GROUP

    @property
    def key(self) -> tuple[str, str, str, str]:
        """Case-insensitive identity, as ARM compares names."""
        return (self.subscription_id.lower(), self.resource_group.lower(), self.name.lower(), self.kind)


@dataclass(frozen=True)
class AzureSettings:
    cloud: str = "AzurePublicCloud"
    resource_manager_endpoint: str = CLOUDS["AzurePublicCloud"].resource_manager_endpoint
    api_versions: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_API_VERSIONS))
    max_reads_per_second: float = 10.0  # 0: no client-side limit
    max_read_burst: int = 50

    @property
    def token_scope(self) -> str:
        return CLOUDS[self.cloud].token_scope

    @property
    def authority_host(self) -> str:
        return CLOUDS[self.cloud].authority_host


@dataclass(frozen=True)
class PollingSettings:
    interval: float = 60.0
    timeout: float = 10.0
    concurrency: int = 8
    stale_after: float = 300.0
    member_refresh: float = 600.0
    pool_refresh: float = 600.0


@dataclass(frozen=True)
class DiscoverySettings:
    subscriptions: tuple[str, ...]
    interval: float = 600.0
    resource_groups: tuple[str, ...] = ()  # lower-cased; empty: every resource group
    include: re.Pattern[str] = re.compile(".*")
    exclude: re.Pattern[str] | None = None
    tags: tuple[tuple[str, str], ...] = ()
    kinds: tuple[PoolKind, ...] = POOL_KINDS

    def wants(self, ref: PoolRef, tags: dict[str, str]) -> bool:
        """Does a listed pool pass the resource-group, name and tag filters?"""
        if self.resource_groups and ref.resource_group.lower() not in self.resource_groups:
            return False
        if not self.include.fullmatch(ref.name) or (self.exclude is not None and self.exclude.fullmatch(ref.name)):
            return False
        return all(tags.get(key) == value for key, value in self.tags)


@dataclass(frozen=True)
class ShardingSettings:
    index: int = 0
    count: int = 1


@dataclass(frozen=True)
class Settings:
    azure: AzureSettings
    polling: PollingSettings
    pools: tuple[PoolRef, ...]
    discovery: DiscoverySettings | None = None
    sharding: ShardingSettings = ShardingSettings()


MAX_DURATION = 30 * 86400.0
MIN_INTERVAL = 1.0  # polling and discovery: faster than this would spend ARM's read budget on nothing


def _interval(value: object) -> float:
    seconds = parse_duration(value)
    if seconds < MIN_INTERVAL:
        raise ValueError(f"must be at least 1s, got {_short(value)}")
    return seconds


def _finite(value: int | float | str) -> float:
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    return number


def parse_duration(value: object) -> float:
    """``90s``, ``5m``, ``1h``, ``250ms`` or plain seconds -> seconds (> 0, at most 30 days)."""
    if isinstance(value, bool):
        raise ValueError("must be a duration such as 90s, 5m, 1h or plain seconds")
    if isinstance(value, (int, float)):
        seconds = _finite(value)
    elif isinstance(value, str) and (match := _DURATION.match(value.strip())):
        seconds = _finite(match.group(1)) * _DURATION_UNITS[match.group(2)]
    else:
        raise ValueError(f"must be a duration such as 90s, 5m, 1h or plain seconds, got {_short(value)}")
    if math.isnan(seconds) or seconds <= 0:
        raise ValueError(f"must be positive, got {_short(value)}")
    if seconds > MAX_DURATION:
        raise ValueError(f"must be at most 30 days, got {_short(value)}")
    return seconds


def _short(value: object) -> str:
    """A size-limited repr: a value from a YAML file may be an alias bomb that a full repr would expand."""
    return short_repr(value)


class _Checker(Problems):
    """Collects problems while reading nested mappings."""

    def mapping(self, value: object, path: str, allowed: set[str]) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problem(path, f"must be a mapping, got {_type_name(value)}")
            return {}
        for key in value:
            if key not in allowed:
                name = key if isinstance(key, str) and len(key) <= 60 else _short(key)
                self.problem(f"{path}.{name}" if path else name, f"unknown key (allowed: {', '.join(sorted(allowed))})")
        return value

    def field(self, data: dict[str, Any], path: str, key: str, convert: Callable[[object], Any], default: Any) -> Any:
        if key not in data or data[key] is None:
            return default
        try:
            return convert(data[key])
        except ValueError as exc:
            self.problem(f"{path}.{key}" if path else key, str(exc))
            return default


def _type_name(value: object) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "an integer", float: "a number"}.get(
        type(value), type(value).__name__
    )


def _string(pattern: re.Pattern[str] | None = None, what: str = "") -> Callable[[object], str]:
    def convert(value: object) -> str:
        if not isinstance(value, str):
            raise ValueError(f"must be a string, got {_type_name(value)}")
        if pattern is not None and not pattern.match(value):
            raise ValueError(f"{_short(value)} is not {what}")
        return value

    return convert


def _int_between(low: int, high: int) -> Callable[[object], int]:
    def convert(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be an integer, got {_type_name(value)}")
        if value < low:
            raise ValueError(f"must be at least {low}, got {_short(value)}")
        if value > high:
            raise ValueError(f"must be at most {high}, got {_short(value)}")
        return value

    return convert


def _number_between(low: float, high: float) -> Callable[[object], float]:
    def convert(value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"must be a number, got {_type_name(value)}")
        number = _finite(value)
        if math.isnan(number) or number < low:
            raise ValueError(f"must not be below {low:g}, got {_short(value)}")
        if number > high:
            raise ValueError(f"must be at most {high:g}, got {_short(value)}")
        return number

    return convert


def _non_negative_int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"must be an integer, got {_type_name(value)}")
    if value < 0:
        raise ValueError(f"must not be negative, got {value}")
    return value


def _regex(value: object) -> re.Pattern[str]:
    if not isinstance(value, str):
        raise ValueError(f"must be a regular expression string, got {_type_name(value)}")
    try:
        return re.compile(value)
    except (re.error, OverflowError, RecursionError) as exc:
        raise ValueError(f"is not a valid regular expression: {exc}") from None


def _one_of(choices: tuple[str, ...] | list[str]) -> Callable[[object], str]:
    def convert(value: object) -> str:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {_short(value)}")
        return str(value)

    return convert


def _pool_kind(value: object) -> PoolKind:
    return PoolKind(_one_of(POOL_KINDS)(value))


def _endpoint(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a URL string, got {_type_name(value)}")
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"must be an absolute https URL, got {_short(value)}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"must be a bare origin such as https://management.azure.com, got {_short(value)}")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError(f"plain http is only allowed for a loopback host (the bearer token travels on it), got {_short(value)}")
    return f"{parts.scheme}://{parts.netloc}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _read_azure(check: _Checker, raw: object) -> AzureSettings:
    data = check.mapping(raw, "azure", {"cloud", "resource_manager_endpoint", "api_versions", "max_reads_per_second", "max_read_burst"})
    cloud = check.field(data, "azure", "cloud", _one_of(tuple(CLOUDS)), "AzurePublicCloud")
    endpoint = check.field(data, "azure", "resource_manager_endpoint", _endpoint, CLOUDS[cloud].resource_manager_endpoint)
    versions_raw = check.mapping(data.get("api_versions"), "azure.api_versions", set(DEFAULT_API_VERSIONS))
    versions = dict(DEFAULT_API_VERSIONS)
    for name in DEFAULT_API_VERSIONS:
        versions[name] = check.field(
            versions_raw, "azure.api_versions", name, _string(_API_VERSION, "an api-version such as 2025-03-01"), versions[name]
        )
    defaults = AzureSettings()
    return AzureSettings(
        cloud=cloud,
        resource_manager_endpoint=endpoint,
        api_versions=versions,
        max_reads_per_second=check.field(data, "azure", "max_reads_per_second", _number_between(0, 100_000), defaults.max_reads_per_second),
        max_read_burst=check.field(data, "azure", "max_read_burst", _int_between(1, 100_000), defaults.max_read_burst),
    )


def _read_polling(check: _Checker, raw: object) -> PollingSettings:
    data = check.mapping(raw, "polling", {"interval", "timeout", "concurrency", "stale_after", "member_refresh", "pool_refresh"})
    defaults = PollingSettings()
    polling = PollingSettings(
        interval=check.field(data, "polling", "interval", _interval, defaults.interval),
        timeout=check.field(data, "polling", "timeout", parse_duration, defaults.timeout),
        concurrency=check.field(data, "polling", "concurrency", _int_between(1, 256), defaults.concurrency),
        stale_after=check.field(data, "polling", "stale_after", parse_duration, defaults.stale_after),
        member_refresh=check.field(data, "polling", "member_refresh", parse_duration, defaults.member_refresh),
        pool_refresh=check.field(data, "polling", "pool_refresh", parse_duration, defaults.pool_refresh),
    )
    if polling.stale_after < polling.interval:
        check.problem("polling.stale_after", f"must be at least polling.interval ({polling.interval:g}s)")
    return polling


def _read_pools(check: _Checker, raw: object, discovery: bool) -> tuple[PoolRef, ...]:
    if raw is None:
        if not discovery:
            check.problem("pools", "is required: list at least one pool (or configure discovery)")
        return ()
    if not isinstance(raw, list):
        check.problem("pools", f"must be a list, got {_type_name(raw)}")
        return ()
    if not raw and not discovery:
        check.problem("pools", "must list at least one pool (or configure discovery)")
    pools: list[PoolRef] = []
    seen: dict[tuple[str, str, str, str], int] = {}
    for index, item in enumerate(raw):
        path = f"pools[{index}]"
        if not isinstance(item, dict):
            check.problem(path, f"must be a mapping, got {_type_name(item)}")
            continue
        data = check.mapping(item, path, {"subscription_id", "resource_group", "name", "kind"})
        missing = [key for key in ("subscription_id", "resource_group", "name") if data.get(key) is None]
        for key in missing:
            check.problem(f"{path}.{key}", "is required")
        before = len(check.problems)
        ref = PoolRef(
            subscription_id=check.field(data, path, "subscription_id", _string(_SUBSCRIPTION_ID, "a subscription id (a GUID)"), "").lower(),
            resource_group=check.field(data, path, "resource_group", _string(_RESOURCE_GROUP, "a resource group name"), ""),
            name=check.field(data, path, "name", _string(_POOL_NAME, "a standby pool name (3-24 letters, digits, hyphens)"), ""),
            kind=check.field(data, path, "kind", _pool_kind, PoolKind.CONTAINER_GROUP),
        )
        if missing or len(check.problems) > before:
            continue
        if ref.key in seen:
            check.problem(path, f"duplicate of pools[{seen[ref.key]}] (names compare case-insensitively)")
            continue
        seen[ref.key] = index
        pools.append(ref)
    return tuple(pools)


def _string_list(check: _Checker, raw: object, path: str, convert: Callable[[object], T]) -> tuple[T, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        check.problem(path, f"must be a list, got {_type_name(raw)}")
        return ()
    values: list[T] = []
    for index, item in enumerate(raw):
        try:
            values.append(convert(item))
        except ValueError as exc:
            check.problem(f"{path}[{index}]", str(exc))
    return tuple(values)


def _read_discovery(check: _Checker, raw: object) -> DiscoverySettings | None:
    if raw is None:
        return None
    data = check.mapping(raw, "discovery", {"interval", "subscriptions", "resource_groups", "include", "exclude", "tags", "kinds"})
    subscriptions = _string_list(check, data.get("subscriptions"), "discovery.subscriptions", _string(_SUBSCRIPTION_ID, "a subscription id (a GUID)"))
    if not subscriptions and isinstance(data.get("subscriptions"), (list, type(None))):
        check.problem("discovery.subscriptions", "must list at least one subscription id")
    tags_raw = data.get("tags") or {}
    if not isinstance(tags_raw, dict):
        check.problem("discovery.tags", f"must be a mapping, got {_type_name(tags_raw)}")
        tags_raw = {}
    tags = []
    for key, value in tags_raw.items():
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            check.problem(f"discovery.tags.{key}", f"must be a string, got {_type_name(value)}")
        else:
            tags.append((str(key), str(value)))
    kinds = _string_list(check, data.get("kinds"), "discovery.kinds", _pool_kind) or POOL_KINDS
    defaults = DiscoverySettings(subscriptions=())
    return DiscoverySettings(
        subscriptions=tuple(dict.fromkeys(sub.lower() for sub in subscriptions)),
        interval=check.field(data, "discovery", "interval", _interval, defaults.interval),
        resource_groups=tuple(rg.lower() for rg in _string_list(check, data.get("resource_groups"), "discovery.resource_groups",
                                                                 _string(_RESOURCE_GROUP, "a resource group name"))),
        include=check.field(data, "discovery", "include", _regex, defaults.include),
        exclude=check.field(data, "discovery", "exclude", _regex, None),
        tags=tuple(tags),
        kinds=kinds,
    )


MAX_SHARDS = 10_000


def shard_index(value: object) -> int:
    """A shard index (``sharding.index``, ``--shard.index``): 0 or more."""
    return _non_negative_int(value)


shard_count = _int_between(1, MAX_SHARDS)  # ``sharding.count``, ``--shard.count``


def _read_sharding(check: _Checker, raw: object) -> ShardingSettings:
    data = check.mapping(raw, "sharding", {"index", "count"})
    sharding = ShardingSettings(
        index=check.field(data, "sharding", "index", shard_index, 0),
        count=check.field(data, "sharding", "count", shard_count, 1),
    )
    if sharding.index >= sharding.count:
        check.problem("sharding.index", f"must be below sharding.count ({sharding.count}), got {sharding.index}")
    return sharding


def load_settings(data: object) -> Settings:
    """Validate an already-parsed YAML document; raise :class:`ConfigError` listing every problem."""
    check = _Checker()
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([f"(top level): must be a mapping, got {_type_name(data)}"])
    check.mapping(data, "", {"azure", "polling", "pools", "discovery", "sharding"})
    discovery = _read_discovery(check, data.get("discovery"))
    settings = Settings(
        azure=_read_azure(check, data.get("azure")),
        polling=_read_polling(check, data.get("polling")),
        pools=_read_pools(check, data.get("pools"), discovery is not None),
        discovery=discovery,
        sharding=_read_sharding(check, data.get("sharding")),
    )
    if check.problems:
        raise ConfigError(check.problems)
    return settings


def load_file(path: str | Path) -> Settings:
    """Read and validate a YAML file; unreadable files and YAML syntax errors are ConfigErrors too.

    Only a regular file of at most 1 MiB is read (a FIFO or ``/dev/zero`` is refused at once), and a
    document whose aliases would expand it past the budget of :mod:`exporter.boundedfile` is refused.
    """
    try:
        raw = read_bounded(path)
    except FileProblem as exc:
        raise ConfigError([str(exc)]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: cannot read: not UTF-8 ({exc.reason} at byte {exc.start})"]) from None
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML: {exc}".replace("\n", " ")]) from None
    except RecursionError:
        raise ConfigError([f"{path}: not valid YAML: nested too deeply"]) from None
    return load_settings(data)
