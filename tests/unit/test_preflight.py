"""exporter/preflight.py: which reads stand for which subscription and pool kind."""

from __future__ import annotations

from exporter.config import load_settings
from exporter.preflight import probes

SUB = "00000000-0000-0000-0000-000000000000"
OTHER = "11111111-1111-1111-1111-111111111111"


def test_one_probe_per_subscription_and_kind_at_the_scope_the_exporter_reads() -> None:
    settings = load_settings({
        "pools": [
            {"subscription_id": SUB, "resource_group": "rg-a", "name": "one"},
            {"subscription_id": SUB.upper(), "resource_group": "rg-b", "name": "two"},  # same subscription and kind
            {"subscription_id": SUB, "resource_group": "rg-vm", "name": "vms", "kind": "virtual_machine"},
        ],
        "discovery": {"subscriptions": [SUB, OTHER], "kinds": ["container_group"]},
    })
    found = {(p.subscription_id.lower(), p.kind): p for p in probes(settings)}
    assert set(found) == {(SUB, "container_group"), (SUB, "virtual_machine"), (OTHER, "container_group")}
    # A configured pool's resource group first (a role assigned there suffices).
    assert found[(SUB, "container_group")].path == (
        f"/subscriptions/{SUB}/resourceGroups/rg-a/providers/Microsoft.StandbyPool/standbyContainerGroupPools")
    assert found[(SUB, "virtual_machine")].path.endswith("/resourceGroups/rg-vm/providers/Microsoft.StandbyPool/standbyVirtualMachinePools")
    # A subscription only discovery reads: the subscription-wide list discovery makes.
    assert found[(OTHER, "container_group")].scope == "subscription"
    assert found[(OTHER, "container_group")].path == f"/subscriptions/{OTHER}/providers/Microsoft.StandbyPool/standbyContainerGroupPools"
