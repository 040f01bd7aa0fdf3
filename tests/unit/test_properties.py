"""Property-based tests (issue 6): whatever ARM or an operator hands the parsers, they end in the typed error
(ModelError / ConfigError) or in a valid result, never in another exception.

Two kinds of inputs reach the deep code paths: arbitrary JSON built from the keys ARM uses, and the real
bodies of tests/fixtures/arm (and tests/fixtures/config/good) with a few parts replaced, deleted or retyped.
A valid model result must also render (exporter.exposition.render) into an exposition Prometheus can parse.

Numbers JSON can carry but floats cannot hold (1e400 -> inf, NaN, integers beyond 1.8e308) get their own
``*_out_of_range`` tests, and lone surrogates (``"\\ud800"`` is valid JSON) theirs; tests that find an open bug
were strict xfails while their bug was open and are plain regression tests now.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import math
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from exporter import model
from exporter.armstats import ArmStatsSnapshot
from exporter.config import CLOUDS, ConfigError, PoolRef, Settings, load_settings
from exporter.exposition import render
from exporter.snapshot import PoolData, PoolStatus, Snapshot
from tests.support.fakes import SUB

FIXTURES = Path(__file__).parent.parent / "fixtures"
ARM = FIXTURES / "arm"

PROPERTY = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SMALL = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# --------------------------------------------------------------------------------------------------
# strategies
# --------------------------------------------------------------------------------------------------
ARM_KEYS = (
    "id", "name", "type", "location", "tags", "properties", "provisioningState", "instanceCountSummary", "zone",
    "instanceCountsByState", "state", "count", "status", "code", "message", "prediction", "forecastValues",
    "instancesRequestedCount", "forecastInfo", "forecastStartTime", "forecastAccuracy", "seriesUnitIntervalInMins",
    "elasticityProfile", "maxReadyCapacity", "minReadyCapacity", "virtualMachineState", "attachedVirtualMachineScaleSetId",
    "virtualMachineResourceId", "statuses", "isVMInStandbyPool", "instanceView", "containers", "currentState", "value",
)
STATE_WORDS = (
    "Running", "running", "Creating", "Deleting", "Succeeded", "succeeded", "Failed", "HealthState/healthy",
    "HealthState/degraded", "healthstate/", "ProvisioningState/succeeded", "PowerState/deallocated", "PowerState/running",
    "HibernationState/Hibernated", "Deallocated", "Hibernated", "Mix", "", "1", "2", "/", "ProvisioningState/",
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm",
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.StandbyPool/standbyContainerGroupPools/p",
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.StandbyPool/standbyVirtualMachinePools/p",
    "2026-11-25T20:00:00Z", "2026-11-25T20:00:00.1234567+01:00", "not a date", '{"forecastAccuracy": 85}', "{", "85",
)


def scalars(extreme: bool = False, surrogates: bool = False) -> st.SearchStrategy[Any]:
    """What json.loads can return for a scalar.

    ``extreme``: also numbers a float cannot hold (1e400 -> inf, NaN, 10**400); ``surrogates``: also lone
    surrogates, which JSON's \\ud800 escapes produce.
    """
    text = st.text(max_size=12) | st.sampled_from(STATE_WORDS)
    numbers = st.integers(-(2**63), 2**63) | st.floats(allow_nan=False, allow_infinity=False)
    if extreme:
        numbers = numbers | st.floats() | st.sampled_from([10**400, -(10**400), math.inf, -math.inf, math.nan])
    if surrogates:
        text = text | st.builds(lambda a, b: a + "\ud800" + b, st.sampled_from(STATE_WORDS), st.text(max_size=3))
    return st.none() | st.booleans() | numbers | text


def containers(keys: st.SearchStrategy[Any]) -> Any:
    """The ``extend`` of st.recursive: lists and objects of ``children``."""

    def extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=5)

    return extend


def json_values(extreme: bool = False, surrogates: bool = False) -> st.SearchStrategy[Any]:
    keys = st.sampled_from(ARM_KEYS) | st.text(max_size=8)
    return st.recursive(scalars(extreme, surrogates), containers(keys), max_leaves=24)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            paths.extend(_paths(child, (*prefix, key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            paths.extend(_paths(child, (*prefix, index)))
    return paths


@st.composite
def mutated(draw: st.DrawFn, documents: list[Any], extreme: bool = False, max_mutations: int = 4, surrogates: bool = False) -> Any:
    """One of ``documents`` with 0..max_mutations parts replaced, deleted, duplicated, emptied or retyped."""
    document = copy.deepcopy(draw(st.sampled_from(documents)))
    for _ in range(draw(st.integers(0, max_mutations))):
        paths = _paths(document)
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["replace", "replace", "scalar", "delete", "wrap", "empty", "duplicate"]))
        if not path:
            if action in ("replace", "scalar"):
                document = draw(json_values(extreme, surrogates) if action == "replace" else scalars(extreme, surrogates))
            continue
        parent = document
        for step in path[:-1]:
            parent = parent[step]
        last, current = path[-1], parent[path[-1]]
        if action == "delete":
            del parent[last]
            continue
        parent[last] = {
            "replace": lambda: draw(json_values(extreme, surrogates)),
            "scalar": lambda: draw(scalars(extreme, surrogates)),
            "wrap": lambda: [current],  # noqa: B023 -- each lambda is called in the iteration that made it
            "empty": lambda: type(current)() if isinstance(current, (dict, list, str)) else None,  # noqa: B023
            "duplicate": lambda: current + current if isinstance(current, (list, str)) else current,  # noqa: B023
        }[action]()
    return document


def _load(pattern: str) -> list[Any]:
    documents = [json.loads(path.read_text()) for path in sorted(ARM.glob(pattern))]
    assert documents, f"no fixture matches {pattern}"
    return documents


CG_RUNTIME_VIEWS = _load("runtime_view_*.json")
VM_RUNTIME_VIEWS = _load("vm_runtime_view_*.json")
POOLS = _load("pool.json") + _load("cg_pool_*.json") + _load("vm_pool_*.json")
CONTAINER_GROUPS = _load("container_group_*.json")
VM_INSTANCE_VIEWS = _load("vm_instance_view_*.json")
VM_REFS = [item for page in _load("standby_virtual_machines_page.json") for item in page["value"]]
LISTED_POOLS = _load("pool_list_item_*.json") + [{"id": p["id"], "tags": p.get("tags")} for p in POOLS if "id" in p]
PREDICTIONS = [view["properties"]["prediction"] for view in CG_RUNTIME_VIEWS + VM_RUNTIME_VIEWS if "prediction" in view.get("properties", {})]
assert PREDICTIONS, "no runtime view fixture has a prediction"


# --------------------------------------------------------------------------------------------------
# valid results: shapes the rest of the exporter relies on, and they render
# --------------------------------------------------------------------------------------------------
REF = PoolRef(SUB, "rg", "pool")
VM_REF = PoolRef(SUB, "rg", "pool", "virtual_machine")
PLAIN_POOL = model.Pool("pool", "westeurope", "Succeeded", 3)
PLAIN_VIEW = model.RuntimeView((model.InstanceCount("", "Running", 1),), "Succeeded", "healthy")


def assert_renders(ref: PoolRef, data: PoolData) -> None:
    """The snapshot of a successful poll with these values renders, and both expositions parse back."""
    snapshot = Snapshot(pools=(PoolStatus(ref, polled=True, up=True, last_success=1.0, poll_duration=0.1, data=data),),
                        arm=ArmStatsSnapshot(), interval=60.0)
    rendered = render(snapshot)
    text = rendered.text.decode("utf-8")
    assert rendered.openmetrics.decode("utf-8")
    # Parsing is slow (tests/unit/test_escaping.py parses every label); here only the lines of the pool's samples.
    # Lines end at "\n" only: str.splitlines() would also split inside a label value holding \x1e or U+2028.
    lines = [line for line in text.split("\n") if line.startswith("azure_standby_pool_") and 'pool="pool"' in line]
    assert lines
    assert list(text_string_to_metric_families("\n".join(lines) + "\n"))


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def check_forecast(forecast: model.Forecast | None) -> None:
    if forecast is None:
        return
    assert 1 <= len(forecast.instances_requested) <= model.FORECAST_STEPS
    assert all(isinstance(v, float) for v in forecast.instances_requested)
    for value in (forecast.start_timestamp, forecast.interval_seconds, forecast.accuracy_ratio):
        assert value is None or (isinstance(value, float) and math.isfinite(value))
    assert forecast.interval_seconds is None or forecast.interval_seconds > 0
    assert forecast.accuracy_ratio is None or forecast.accuracy_ratio >= 0


def check_runtime_view(view: model.RuntimeView, known: tuple[str, ...]) -> None:
    pairs = [(c.availability_zone, c.state) for c in view.instance_counts]
    assert len(pairs) == len(set(pairs)) and pairs
    assert all(isinstance(zone, str) and isinstance(state, str) and state for zone, state in pairs)
    assert all(_is_count(c.count) for c in view.instance_counts)
    for zone in {zone for zone, _ in pairs}:
        assert {state for z, state in pairs if z == zone} >= set(known)
    assert view.provisioning_state is None or isinstance(view.provisioning_state, str)
    assert view.health_state is None or (isinstance(view.health_state, str) and view.health_state)
    check_forecast(view.forecast)


def check_pool(pool: model.Pool) -> None:
    assert isinstance(pool.name, str) and pool.name
    assert isinstance(pool.location, str)
    assert isinstance(pool.provisioning_state, str) and pool.provisioning_state
    assert pool.max_ready_capacity is None or _is_count(pool.max_ready_capacity)
    assert pool.min_ready_capacity is None or _is_count(pool.min_ready_capacity)
    assert pool.virtual_machine_state is None or (isinstance(pool.virtual_machine_state, str) and pool.virtual_machine_state)
    assert pool.scale_set is None or isinstance(pool.scale_set, str)


def check_member(member: model.Member) -> None:
    assert isinstance(member.name, str) and member.name
    assert isinstance(member.provisioning_state, str) and member.provisioning_state
    assert member.state is None or isinstance(member.state, str)
    assert isinstance(member.ready, bool)
    assert member.in_pool is None or isinstance(member.in_pool, bool)


# --------------------------------------------------------------------------------------------------
# model: each parser, arbitrary JSON and mutated real bodies
# --------------------------------------------------------------------------------------------------
def run_runtime_view(body: Any, kind: str) -> None:
    known = model.POOL_STATES[kind]
    try:
        view = model.parse_runtime_view(body, known)
    except model.ModelError:
        event("ModelError")
        return
    event("valid")
    check_runtime_view(view, known)
    assert_renders(REF if kind == "container_group" else VM_REF, PoolData(PLAIN_POOL, view, ()))


@PROPERTY
@given(body=json_values() | mutated(CG_RUNTIME_VIEWS) | mutated(VM_RUNTIME_VIEWS), kind=st.sampled_from(sorted(model.POOL_STATES)))
def test_parse_runtime_view(body: Any, kind: str) -> None:
    run_runtime_view(body, kind)


def run_forecast(prediction: Any) -> None:
    forecast = model.parse_forecast(prediction)  # lenient: never raises, not even ModelError
    event("None" if forecast is None else "forecast")
    check_forecast(forecast)
    view = model.RuntimeView(PLAIN_VIEW.instance_counts, "Succeeded", None, forecast)
    assert_renders(REF, PoolData(PLAIN_POOL, view, ()))


@PROPERTY
@given(prediction=mutated(PREDICTIONS, max_mutations=2) | mutated(PREDICTIONS) | json_values())
def test_parse_forecast(prediction: Any) -> None:
    run_forecast(prediction)


def run_pool(body: Any) -> None:
    try:
        pool = model.parse_pool(body)
    except model.ModelError:
        event("ModelError")
        return
    event("valid")
    check_pool(pool)
    assert_renders(VM_REF if pool.virtual_machine_state else REF, PoolData(pool, PLAIN_VIEW, ()))


@PROPERTY
@given(body=json_values() | mutated(POOLS))
def test_parse_pool(body: Any) -> None:
    run_pool(body)


def run_member(body: Any) -> None:
    try:
        summary = model.parse_member_summary(body)
    except model.ModelError:
        summary = None
    try:
        member = model.parse_member(body)
    except model.ModelError:
        assert summary is None or body.get("properties") is not None  # a member fails only where its summary does, or deeper
        event("ModelError")
        return
    event("valid")
    assert summary is not None and (summary.name, summary.provisioning_state) == (member.name, member.provisioning_state)
    assert isinstance(summary.provisioning_state, str) and summary.provisioning_state
    check_member(member)
    assert_renders(REF, PoolData(PLAIN_POOL, PLAIN_VIEW, (member,)))


@PROPERTY
@given(body=json_values() | mutated(CONTAINER_GROUPS))
def test_parse_member_and_member_summary(body: Any) -> None:
    run_member(body)


def run_virtual_machine(body: Any, name: str, pool_vm_state: str | None) -> None:
    try:
        member = model.parse_virtual_machine(body, name, pool_vm_state)
    except model.ModelError:
        event("ModelError")
        return
    event("valid")
    check_member(member)
    assert member.name == name
    assert member.state is None or member.state == member.state.lower()
    assert_renders(VM_REF, PoolData(PLAIN_POOL, PLAIN_VIEW, (member,)))


@PROPERTY
@given(
    body=json_values() | mutated(VM_INSTANCE_VIEWS),
    name=st.sampled_from(["vm0", "testPool_vm0"]),
    pool_vm_state=st.none() | st.sampled_from([*model.VIRTUAL_MACHINE_STATES, "Weird", ""]),
)
def test_parse_virtual_machine(body: Any, name: str, pool_vm_state: str | None) -> None:
    run_virtual_machine(body, name, pool_vm_state)


def run_virtual_machine_ref(body: Any) -> None:
    try:
        ref = model.parse_virtual_machine_ref(body)
    except model.ModelError:
        event("ModelError")
        return
    event("valid")
    assert isinstance(ref.name, str) and ref.name
    assert isinstance(ref.resource_id, str) and ref.resource_id.lower().startswith("/subscriptions/")
    assert ref.resource_id.endswith("/" + ref.name)
    assert isinstance(ref.provisioning_state, str) and ref.provisioning_state


@PROPERTY
@given(body=json_values() | mutated(VM_REFS))
def test_parse_virtual_machine_ref(body: Any) -> None:
    run_virtual_machine_ref(body)


def run_listed_pool(body: Any) -> None:
    try:
        listed = model.parse_listed_pool(body)
    except model.ModelError:
        event("ModelError")
        return
    event("valid")
    for value in (listed.subscription_id, listed.resource_group, listed.name):
        assert isinstance(value, str) and value and "/" not in value
    assert listed.subscription_id == listed.subscription_id.lower()
    assert listed.kind in model.POOL_STATES
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in listed.tags.items())


@PROPERTY
@given(body=json_values() | mutated(LISTED_POOLS))
def test_parse_listed_pool(body: Any) -> None:
    run_listed_pool(body)


# Out-of-range JSON: the same properties over numbers a float cannot hold.
RUNTIME_VIEW_INF = json.loads('{"properties": {"instanceCountSummary": [{"instanceCountsByState": [{"state": "Running", "count": 1e400}]}]}}')
RUNTIME_VIEW_NAN = json.loads('{"properties": {"instanceCountSummary": [{"instanceCountsByState": [{"state": "Running", "count": NaN}]}]}}')
RUNTIME_VIEW_HUGE = json.loads(
    '{"properties": {"instanceCountSummary": [{"instanceCountsByState": [{"state": "Running", "count": 1' + "0" * 400 + '}]}]}}')
POOL_INF = json.loads('{"name": "p", "properties": {"provisioningState": "Succeeded", "elasticityProfile": {"maxReadyCapacity": 1e400}}}')
PREDICTION_HUGE = json.loads('{"forecastValues": {"instancesRequestedCount": [1%s]}}' % ("0" * 400))
PREDICTION_HUGE_ACCURACY = json.loads('{"forecastValues": {"instancesRequestedCount": [1]}, "forecastInfo": {"forecastAccuracy": 1%s}}' % ("0" * 400))


@SMALL
@example(body=RUNTIME_VIEW_INF, kind="container_group")
@example(body=RUNTIME_VIEW_NAN, kind="container_group")
@example(body=RUNTIME_VIEW_HUGE, kind="container_group")
@given(body=json_values(extreme=True) | mutated(CG_RUNTIME_VIEWS, extreme=True), kind=st.sampled_from(sorted(model.POOL_STATES)))
def test_parse_runtime_view_out_of_range(body: Any, kind: str) -> None:
    run_runtime_view(body, kind)


@SMALL
@example(prediction=PREDICTION_HUGE)
@example(prediction=PREDICTION_HUGE_ACCURACY)
@given(prediction=json_values(extreme=True) | mutated(PREDICTIONS, extreme=True))
def test_parse_forecast_out_of_range(prediction: Any) -> None:
    run_forecast(prediction)


@SMALL
@example(body=POOL_INF)
@given(body=json_values(extreme=True) | mutated(POOLS, extreme=True))
def test_parse_pool_out_of_range(body: Any) -> None:
    run_pool(body)


@SMALL
@given(body=json_values(extreme=True) | mutated(CONTAINER_GROUPS, extreme=True))
def test_parse_member_out_of_range(body: Any) -> None:
    run_member(body)


@SMALL
@given(body=json_values(extreme=True) | mutated(VM_INSTANCE_VIEWS, extreme=True), name=st.just("vm0"),
       pool_vm_state=st.none() | st.sampled_from(model.VIRTUAL_MACHINE_STATES))
def test_parse_virtual_machine_out_of_range(body: Any, name: str, pool_vm_state: str | None) -> None:
    run_virtual_machine(body, name, pool_vm_state)


@SMALL
@given(body=json_values(extreme=True) | mutated(VM_REFS, extreme=True))
def test_parse_virtual_machine_ref_out_of_range(body: Any) -> None:
    run_virtual_machine_ref(body)


@SMALL
@given(body=json_values(extreme=True) | mutated(LISTED_POOLS, extreme=True))
def test_parse_listed_pool_out_of_range(body: Any) -> None:
    run_listed_pool(body)


RUNNERS = {
    "runtime_view": (lambda body: run_runtime_view(body, "container_group"), CG_RUNTIME_VIEWS + VM_RUNTIME_VIEWS),
    "pool": (run_pool, POOLS),
    "member": (run_member, CONTAINER_GROUPS),
    "virtual_machine": (lambda body: run_virtual_machine(body, "vm0", None), VM_INSTANCE_VIEWS),
}


@SMALL
@example(case=("runtime_view",
                json.loads('{"properties": {"instanceCountSummary": [{"instanceCountsByState": [{"state": "s\\ud800", "count": 1}]}]}}')))
@example(case=("member", json.loads('{"name": "cg_\\ud800", "properties": {"provisioningState": "Succeeded"}}')))
@given(case=st.sampled_from(sorted(RUNNERS)).flatmap(lambda which: st.tuples(st.just(which), mutated(RUNNERS[which][1], surrogates=True))))
def test_parsers_with_lone_surrogates(case: tuple[str, Any]) -> None:
    which, body = case
    RUNNERS[which][0](body)


# --------------------------------------------------------------------------------------------------
# configuration: parsed YAML and YAML text
# --------------------------------------------------------------------------------------------------
CONFIG_KEYS = (
    "azure", "polling", "pools", "discovery", "sharding", "cloud", "resource_manager_endpoint", "api_versions",
    "standby_pool", "container_instance", "compute", "max_reads_per_second", "max_read_burst", "interval", "timeout",
    "concurrency", "stale_after", "member_refresh", "pool_refresh", "subscription_id", "resource_group", "name", "kind",
    "subscriptions", "resource_groups", "include", "exclude", "tags", "kinds", "index", "count",
)
CONFIG_WORDS = (
    "90s", "5m", "1h", "250ms", "0s", "-1s", "1.5", "soon", "AzurePublicCloud", "AzureChinaCloud", "Mars",
    "https://management.azure.com", "http://127.0.0.1:8080", "http://example.com", "https://[::1", "https://h/path",
    "2025-03-01", "2025-03-01-preview", "2025-3-1", SUB, SUB.upper(), "not-a-guid", "rg", "Rg.One_(x)", "rg/x",
    "pool-a", "a_b", "ab", "container_group", "virtual_machine", ".*", "(", "web-.*", "[",
)


def config_scalars(extreme: bool = False) -> st.SearchStrategy[Any]:
    """What yaml.safe_load returns for a scalar (dates, bytes included). ``extreme``: huge ints, inf and NaN."""
    numbers = st.integers(-(10**18), 10**18) | st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12)
    if extreme:
        numbers = numbers | st.floats() | st.sampled_from([10**400, math.inf, math.nan, 1e-300])
    return (st.none() | st.booleans() | numbers | st.text(max_size=10) | st.sampled_from(CONFIG_WORDS)
            | st.dates() | st.datetimes() | st.binary(max_size=4))


def config_values(extreme: bool = False) -> st.SearchStrategy[Any]:
    keys = st.sampled_from(CONFIG_KEYS) | st.text(max_size=6) | st.integers(-3, 3) | st.none()
    return st.recursive(config_scalars(extreme), containers(keys), max_leaves=24)


def _yaml_documents(folder: str) -> list[Any]:
    """The fixture files of ``folder`` that are valid YAML, parsed (some bad ones are broken YAML on purpose)."""
    documents = []
    for path in sorted((FIXTURES / "config" / folder).glob("*.yaml")):
        try:
            documents.append(yaml.safe_load(path.read_text()))
        except yaml.YAMLError:
            pass
    assert documents
    return documents


GOOD_CONFIGS = _yaml_documents("good")
BAD_CONFIGS = _yaml_documents("bad")
DURATIONS = ("interval", "timeout", "stale_after", "member_refresh", "pool_refresh")


def check_settings(loaded: Settings) -> None:
    """What the poller, the ARM client and the scheduler need of a configuration that loaded."""
    polling = loaded.polling
    for name in DURATIONS:
        value = getattr(polling, name)
        assert isinstance(value, float) and math.isfinite(value) and value > 0, (name, value)
    assert polling.stale_after >= polling.interval
    assert isinstance(polling.concurrency, int) and polling.concurrency >= 1
    azure = loaded.azure
    assert azure.cloud in CLOUDS
    endpoint = urlsplit(azure.resource_manager_endpoint)
    assert endpoint.scheme in ("https", "http") and endpoint.hostname and endpoint.path == "" and not endpoint.query
    if endpoint.scheme == "http":  # the bearer token travels in clear: loopback only
        assert endpoint.hostname == "localhost" or ipaddress.ip_address(endpoint.hostname).is_loopback
    assert math.isfinite(azure.max_reads_per_second) and azure.max_reads_per_second >= 0
    assert isinstance(azure.max_read_burst, int) and azure.max_read_burst >= 1
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}(-preview)?", version) for version in azure.api_versions.values())
    keys = [ref.key for ref in loaded.pools]
    assert len(keys) == len(set(keys))
    for ref in loaded.pools:
        assert re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", ref.subscription_id)
        assert ref.kind in model.POOL_STATES
    assert loaded.pools or loaded.discovery is not None
    if loaded.discovery is not None:
        assert loaded.discovery.subscriptions and math.isfinite(loaded.discovery.interval) and loaded.discovery.interval > 0
    assert 0 <= loaded.sharding.index < loaded.sharding.count


def run_settings(data: Any) -> None:
    try:
        loaded = load_settings(data)
    except ConfigError as error:
        assert error.problems and all(isinstance(problem, str) and problem for problem in error.problems)
        event("ConfigError")
        return
    event("valid")
    check_settings(loaded)


@PROPERTY
@given(data=mutated(GOOD_CONFIGS, max_mutations=2) | mutated(GOOD_CONFIGS) | mutated(BAD_CONFIGS) | config_values())
def test_load_settings(data: Any) -> None:
    run_settings(data)


YAML_VALUES = (
    "90s", "1.5", "0", "-3", "1e400", "0x1F", "0o17", "1_000", "1:20", "yes", "off", "~", "null", "2024-01-01",
    "2024-01-01 10:00:00", "!!binary aGk=", "!!set {a, b}", "!!str 5", "[]", "{}", "[a, b]", "{a: 1}", '"\\ud800"',
    "&x [*x]", "'('", "'a{3}'", SUB, "https://management.azure.com", "http://10.0.0.1", "http://[::1]:80",
)
EXTREME_YAML_VALUES = (".inf", "-.inf", ".nan", "1.0e+400", "1" + "0" * 400, "'a{99999999999}'")


@st.composite
def yaml_documents(draw: st.DrawFn, extreme: bool = False) -> str:
    """YAML text shaped like a configuration, with YAML 1.1 scalars (sexagesimal, octal, tags, anchors)."""
    values = YAML_VALUES + (EXTREME_YAML_VALUES if extreme else ())
    lines = []
    for section, keys in (
        ("azure", ("cloud", "resource_manager_endpoint", "max_reads_per_second", "max_read_burst")),
        ("polling", ("interval", "timeout", "concurrency", "stale_after", "member_refresh", "pool_refresh")),
        ("discovery", ("interval", "subscriptions", "include", "exclude", "kinds", "tags")),
        ("sharding", ("index", "count")),
    ):
        if draw(st.booleans()):
            lines.append(f"{section}:")
            for key in draw(st.lists(st.sampled_from(keys), max_size=3, unique=True)):
                lines.append(f"  {key}: {draw(st.sampled_from(values))}")
    lines.append("pools:")
    for _ in range(draw(st.integers(0, 2))):
        lines.append(f"  - subscription_id: {draw(st.sampled_from([SUB, *values]))}")
        lines.append(f"    resource_group: {draw(st.sampled_from(['rg', *values]))}")
        lines.append(f"    name: {draw(st.sampled_from(['pool-a', 'pool-b', *values]))}")
    return "\n".join(lines) + "\n"


def run_yaml(text: str) -> None:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return  # load_file turns these into a ConfigError
    run_settings(data)


@PROPERTY
@given(text=yaml_documents() | st.text(max_size=40) | mutated(GOOD_CONFIGS).map(lambda data: yaml.safe_dump(data, allow_unicode=True)))
def test_load_settings_from_yaml_text(text: str) -> None:
    run_yaml(text)


BASE = {"pools": [{"subscription_id": SUB, "resource_group": "rg", "name": "pool-a"}]}
DISCOVERY = {"discovery": {"subscriptions": [SUB]}}


@SMALL
@example(data={**BASE, "polling": {"interval": 10**400}})
@example(data={**BASE, "polling": {"interval": math.inf, "stale_after": math.inf}})
@example(data={**BASE, "polling": {"timeout": math.nan}})
@example(data={**BASE, "azure": {"max_reads_per_second": 10**400}})
@example(data={**BASE, "azure": {"max_reads_per_second": math.nan}})
@example(data={"discovery": {"subscriptions": [SUB], "include": "a{4294967296}"}})
@example(data={"discovery": {"subscriptions": [SUB], "exclude": "(" * 1200 + ")" * 1200}})
@given(data=config_values(extreme=True) | mutated(GOOD_CONFIGS, extreme=True))
def test_load_settings_out_of_range(data: Any) -> None:
    run_settings(data)


@SMALL
@example(text=f"polling: {{interval: .inf, stale_after: .inf}}\npools: [{{subscription_id: {SUB}, resource_group: rg, name: pool-a}}]\n")
@given(text=yaml_documents(extreme=True))
def test_load_settings_from_yaml_text_out_of_range(text: str) -> None:
    run_yaml(text)


def test_deeply_nested_yaml_file_is_a_config_error(tmp_path: Path) -> None:
    from exporter.config import load_file

    path = tmp_path / "deep.yaml"
    path.write_text("pools: " + "[" * 1500 + "]" * 1500 + "\n")
    with pytest.raises(ConfigError):
        load_file(path)


@pytest.mark.parametrize("data", [
    {**BASE, "polling": {"concurrency": 10**9}},
    {**BASE, "azure": {"max_read_burst": 10**400}},
], ids=["concurrency", "max_read_burst"])
def test_absurd_sizes_are_refused(data: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        load_settings(data)


@pytest.mark.parametrize("interval", ["1ms", "0.001", 0.5])
def test_sub_second_poll_interval_is_refused(interval: object) -> None:
    with pytest.raises(ConfigError):
        load_settings({**BASE, "polling": {"interval": interval}})
