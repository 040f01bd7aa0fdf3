"""Label escaping (issue 6): names and states as ARM spells them, with quotes, backslashes, newlines and
non-ASCII, come out of exporter.exposition.render escaped, parse back to the same values with
prometheus-client's text and OpenMetrics parsers, and pass ``promtool check metrics``.

Azure resource names are narrower than this, but discovered pools, members, locations, health codes and
states are whatever ARM returns, so every label value is treated as arbitrary text.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families as text_families

from exporter import model
from exporter.armstats import ArmStatsSnapshot
from exporter.config import PoolRef
from exporter.exposition import render
from exporter.snapshot import PoolData, PoolStatus, Snapshot
from tests.conftest import promtool_check_metrics
from tests.support.fakes import SUB

NASTY = (
    'dq"uote', "back\\slash", "trailing\\", "new\nline", "\\n-not-a-newline", 'mix\\"ed\n"', "tab\there",
    "carriage\rreturn", "ünïcødé", "日本語-プール", "emoji-🙂", "rtl-עברית", "{brace=\"x\"}", "a,b=c", "#", " ",
    "zero\u200bwidth", "nbsp\u00a0x",
)


def _labels(ref: PoolRef) -> dict[str, str]:
    return {"subscription_id": ref.subscription_id, "resource_group": ref.resource_group, "pool": ref.name, "pool_kind": ref.kind}


def nasty_snapshot(values: dict[str, str]) -> tuple[Snapshot, list[tuple[str, dict[str, str]]]]:
    """A snapshot whose every free-text label carries ``values[...]``, and the (metric, labels) it must expose."""
    ref = PoolRef(SUB, values["resource_group"], values["pool"])
    vm_ref = PoolRef(SUB, values["resource_group"], values["pool"] + "-vm", "virtual_machine")
    counts = (
        model.InstanceCount(values["zone"], "Running", 2),
        model.InstanceCount(values["zone"], values["state"], 1),
    )
    data = PoolData(
        pool=model.Pool(values["pool"], values["location"], values["provisioning_state"], 3, zones=(values["zone"], "2")),
        runtime=model.RuntimeView(counts, values["provisioning_state"], values["health"]),
        members=(model.Member(values["member"], values["member_state"], "Running", True),),
    )
    vm_data = PoolData(
        pool=model.Pool(values["pool"], values["location"], "Succeeded", 2, 1, values["vm_state"], values["scale_set"],
                        vm_state_distribution=(model.StateShare(values["state"], 0.5),)),
        runtime=model.RuntimeView((model.InstanceCount("", "Running", 1),), "Succeeded", None),
        members=(model.Member(values["member"], "Succeeded", "running", False, in_pool=True),),
    )
    snapshot = Snapshot(
        pools=(
            PoolStatus(ref, polled=True, up=True, last_success=1_764_000_000.0, poll_duration=0.5, data=data),
            PoolStatus(vm_ref, polled=True, up=True, last_success=1_764_000_000.0, poll_duration=0.5, data=vm_data),
        ),
        arm=ArmStatsSnapshot(requests={(SUB, "runtime_view", "200"): 3}),
        interval=60.0,
        discovered={(SUB, "container_group"): 1},
    )
    pool, vm = _labels(ref), _labels(vm_ref)
    expected = [
        ("azure_standby_pool_instances", {**pool, "availability_zone": values["zone"], "state": values["state"]}),
        ("azure_standby_pool_provisioning_state", {**pool, "state": values["provisioning_state"]}),
        ("azure_standby_pool_health_state", {**pool, "state": values["health"]}),
        ("azure_standby_pool_info", {**pool, "location": values["location"], "virtual_machine_state": "", "scale_set": "",
                                     "zones": f"{values['zone']},2"}),
        ("azure_standby_pool_info", {**vm, "location": values["location"], "virtual_machine_state": values["vm_state"],
                                     "scale_set": values["scale_set"], "zones": ""}),
        ("azure_standby_pool_vm_state_distribution_ratio", {**vm, "state": values["state"]}),
        ("azure_standby_pool_members", {**pool, "provisioning_state": values["member_state"]}),
        ("azure_standby_pool_member_ready", {**pool, "member": values["member"]}),
        ("azure_standby_pool_member_in_pool", {**vm, "member": values["member"]}),
        ("azure_standby_pool_up", pool),
        ("azure_standby_pool_up", vm),
    ]
    return snapshot, expected


FIELDS = ("resource_group", "pool", "zone", "state", "location", "provisioning_state", "health", "member", "member_state",
          "vm_state", "scale_set")


def check_round_trip(snapshot: Snapshot, expected: list[tuple[str, dict[str, str]]]) -> str:
    """Render; both formats parse and hold every expected series with exactly these label values. Returns the text."""
    rendered = render(snapshot)
    text = rendered.text.decode("utf-8")
    openmetrics = rendered.openmetrics.decode("utf-8") + "# EOF\n"
    for parsed in (list(text_families(text)), list(openmetrics_families(openmetrics))):
        series = [(sample.name, sample.labels) for family in parsed for sample in family.samples]
        for name, labels in expected:
            assert (name, labels) in series, (name, labels)
        # Each sample is one line: an unescaped newline would have split one (or failed the parse).
        assert len(series) == len(set((n, tuple(sorted(lab.items()))) for n, lab in series))
    sample_lines = [line for line in text.split("\n") if line and not line.startswith("#")]
    assert len(sample_lines) == sum(len(family.samples) for family in text_families(text))
    return text


def test_nasty_values_round_trip_and_pass_promtool(promtool: str) -> None:
    texts = []
    for index, nasty in enumerate(NASTY):
        values = {name: f"{nasty}-{name}" for name in FIELDS}
        values["pool"] = f"{nasty}-{index}"
        texts.append(check_round_trip(*nasty_snapshot(values)))
    for text in texts:
        result = promtool_check_metrics(promtool, text)
        assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr


def test_escapes_are_the_text_format_escapes() -> None:
    values = {name: name for name in FIELDS} | {"member": 'a"b\\c\nd'}
    text = check_round_trip(*nasty_snapshot(values))
    assert 'member="a\\"b\\\\c\\nd"' in text


label_text = st.text(st.characters(codec="utf-8"), max_size=16)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(values=dict(zip(FIELDS, NASTY, strict=False)))
@given(values=st.fixed_dictionaries({name: label_text for name in FIELDS}))
def test_any_label_text_round_trips(values: dict[str, str]) -> None:
    if values["state"] == "Running":  # the snapshot already has a Running count for the zone
        values = {**values, "state": "xRunning"}
    check_round_trip(*nasty_snapshot(values))


# Through the parsers: ARM bodies carrying the nasty values end as the same label values.
def _parsed_snapshot(nasty: str) -> tuple[Snapshot, list[tuple[str, dict[str, str]]]]:
    view = model.parse_runtime_view(json.loads(json.dumps({"properties": {
        "instanceCountSummary": [{"zone": f"z{nasty}", "instanceCountsByState": [{"state": f"s{nasty}", "count": 1}]}],
        "provisioningState": "Succeeded", "status": {"code": f"HealthState/h{nasty}"},
    }})))
    pool = model.parse_pool(json.loads(json.dumps({"name": "p", "location": f"l{nasty}", "properties": {
        "provisioningState": f"p{nasty}", "elasticityProfile": {"maxReadyCapacity": 1}, "zones": [f"z{nasty}"],
        "vmStateDistribution": {f"d{nasty}Percent": 10}}})))
    member = model.parse_member(json.loads(json.dumps({"name": f"pool_{nasty}", "properties": {
        "provisioningState": f"m{nasty}", "instanceView": {"state": "Running"}, "containers": []}})))
    listed = model.parse_listed_pool({"id": f"/subscriptions/{SUB}/resourceGroups/rg{nasty}/providers/"
                                            f"Microsoft.StandbyPool/standbyContainerGroupPools/pool{nasty}"})
    ref = PoolRef(listed.subscription_id, listed.resource_group, listed.name, listed.kind)
    snapshot = Snapshot(pools=(PoolStatus(ref, polled=True, up=True, data=PoolData(pool, view, (member,))),),
                        arm=ArmStatsSnapshot(), interval=60.0)
    labels = _labels(ref)
    assert labels["resource_group"] == f"rg{nasty}" and labels["pool"] == f"pool{nasty}"
    return snapshot, [
        ("azure_standby_pool_instances", {**labels, "availability_zone": f"z{nasty}", "state": f"s{nasty}"}),
        ("azure_standby_pool_health_state", {**labels, "state": f"h{nasty}"}),
        ("azure_standby_pool_provisioning_state", {**labels, "state": f"p{nasty}"}),
        ("azure_standby_pool_info", {**labels, "location": f"l{nasty}", "virtual_machine_state": "", "scale_set": "",
                                     "zones": f"z{nasty}"}),
        ("azure_standby_pool_vm_state_distribution_ratio", {**labels, "state": f"d{nasty}"}),
        ("azure_standby_pool_members", {**labels, "provisioning_state": f"m{nasty}"}),
        ("azure_standby_pool_member_ready", {**labels, "member": f"pool_{nasty}"}),
    ]


@pytest.mark.parametrize("nasty", [n for n in NASTY if "#" not in n], ids=lambda n: n.encode("unicode_escape").decode())
def test_values_from_arm_bodies_round_trip(nasty: str, promtool: Any) -> None:
    text = check_round_trip(*_parsed_snapshot(nasty))
    result = promtool_check_metrics(promtool, text)
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr
