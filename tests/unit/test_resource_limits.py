"""Compute's per-provider throttling header, parsed and published per policy."""

from __future__ import annotations

import pytest

from exporter.arm import parse_resource_limits
from exporter.armstats import ArmStats


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
