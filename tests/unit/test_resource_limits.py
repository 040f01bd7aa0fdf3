"""Compute throttles on its own: its x-ms-ratelimit-remaining-resource header per policy, and a 429 from it pausing only Compute reads."""

from __future__ import annotations

import pytest
from azure.core.credentials import AccessToken

from exporter.arm import ArmClient, ArmError, ReadBudget, RetryPolicy, parse_resource_limits, pause_lane
from exporter.armstats import ArmStats
from tests.support.scripted_http import Reply, ScriptedServer


@pytest.mark.parametrize(("header", "expected"), [
    ("Microsoft.Compute/HighCostGet3Min;107,Microsoft.Compute/HighCostGet30Min;827",
     {"Microsoft.Compute/HighCostGet3Min": 107, "Microsoft.Compute/HighCostGet30Min": 827}),
    (" Microsoft.Compute/GetVMScaleSet3Min;197 , Microsoft.Compute/GetVMScaleSet30Min;1297",
     {"Microsoft.Compute/GetVMScaleSet3Min": 197, "Microsoft.Compute/GetVMScaleSet30Min": 1297}),
    (None, {}), ("", {}), ("no-count", {}), (";5", {}), ("p;-1", {}), ("p;ten", {}), ("p\\n;3", {"p\\n": 3}), ("a;1,a;2", {"a": 2}),
])
def test_header_is_parsed_per_policy_and_malformed_entries_left_out(header: str | None, expected: dict[str, int]) -> None:
    assert parse_resource_limits(header) == expected


def test_the_last_value_per_subscription_and_policy_is_kept() -> None:
    stats = ArmStats()
    stats.resource_limits("sub", {"Microsoft.Compute/HighCostGet3Min": 107})
    stats.resource_limits("sub", {"Microsoft.Compute/HighCostGet3Min": 99, "Microsoft.Compute/HighCostGet30Min": 800})
    assert stats.snapshot().remaining_resource == {("sub", "Microsoft.Compute/HighCostGet3Min"): 99,
                                                   ("sub", "Microsoft.Compute/HighCostGet30Min"): 800}


@pytest.mark.parametrize(("url", "lane"), [
    ("https://management.azure.com/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines", "s|microsoft.compute"),
    ("https://management.azure.com/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm/instanceView",
     "s|microsoft.compute"),
    ("https://management.azure.com/subscriptions/s/resourceGroups/rg/providers/Microsoft.StandbyPool/standbyVirtualMachinePools/p", "s"),
    ("https://management.azure.com/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerInstance/containerGroups", "s"),
])
def test_compute_reads_have_their_own_pause_lane(url: str, lane: str) -> None:
    assert pause_lane("s", url) == lane


def test_a_429_from_compute_pauses_only_compute_reads() -> None:
    sub = "00000000-0000-0000-0000-000000000000"
    vms = f"/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines"
    view = f"/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.StandbyPool/standbyVirtualMachinePools/p/runtimeViews/latest"
    now = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    budget = ReadBudget(0, 1, clock=lambda: now[0], sleep=sleep)
    with ScriptedServer() as server:
        server.script(vms, Reply(429, {"error": {"code": "OperationNotAllowed", "message": "throttled"}}, {"Retry-After": "20"}),
                      Reply(200, {"value": []}))
        server.script(view, Reply(200, {"properties": {}}))
        client = ArmClient(server.url, Credential(), "scope", observer=ArmStats(), sleep=sleep, budget=budget,
                           retry=RetryPolicy(attempts=1, retry_after_max=30))
        with pytest.raises(ArmError):
            client.list_all(vms, "2024-07-01", operation="vm_scale_set_list", subscription_id=sub)
        assert budget.paused_for(sub) == 0 and budget.paused_for(f"{sub}|microsoft.compute") == 20
        client.get(view, "2025-03-01", operation="runtime_view", subscription_id=sub)  # goes on at once
        assert sleeps == []
        assert client.list_all(vms, "2024-07-01", operation="vm_scale_set_list", subscription_id=sub) == []
        assert sleeps == [20]  # the Compute read waited out Compute's Retry-After
        client.close()


class Credential:
    def get_token(self, *scopes: str, claims: str | None = None) -> AccessToken:
        return AccessToken("token", 2**31)
