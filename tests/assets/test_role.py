"""deploy/azure/role.json: a custom Azure role with exactly the read actions the exporter uses."""

from __future__ import annotations

import json
import re

from .conftest import REPO

ROLE = REPO / "deploy" / "azure" / "role.json"

# Every ARM read the exporter makes, as an RBAC operation.
EXPORTER_READS = {
    "Microsoft.StandbyPool/standbyContainerGroupPools/read",
    "Microsoft.StandbyPool/standbyContainerGroupPools/runtimeViews/read",
    "Microsoft.StandbyPool/standbyVirtualMachinePools/read",
    "Microsoft.StandbyPool/standbyVirtualMachinePools/runtimeViews/read",
    "Microsoft.StandbyPool/standbyVirtualMachinePools/standbyVirtualMachines/read",
    "Microsoft.ContainerInstance/containerGroups/read",
    "Microsoft.Compute/virtualMachines/read",
    "Microsoft.Compute/virtualMachines/instanceView/read",
}


def load() -> dict:
    return json.loads(ROLE.read_text(encoding="utf-8"))


def test_role_is_a_custom_role_definition() -> None:
    role = load()
    assert role["IsCustom"] is True
    assert role["Name"] and role["Description"]
    scopes = role["AssignableScopes"]
    assert scopes and all(re.fullmatch(r"/subscriptions/[0-9a-f-]{36}(/resourceGroups/[^/]+)?", s) for s in scopes)


def test_role_grants_only_reads() -> None:
    role = load()
    for action in role["Actions"]:
        assert action.endswith("/read"), action
        assert "*" not in action, f"{action}: no wildcards"
    assert role.get("DataActions", []) == [] and role.get("NotActions", []) == []
    assert len(role["Actions"]) == len(set(role["Actions"]))


def test_role_grants_every_read_the_exporter_makes_and_nothing_else() -> None:
    actions = set(load()["Actions"])
    assert EXPORTER_READS - actions == set(), "missing reads: the exporter would get 403"
    assert actions - EXPORTER_READS == set(), "reads the exporter does not make"


def test_kubernetes_readme_lists_the_same_actions() -> None:
    readme = (REPO / "deploy" / "kubernetes" / "README.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"`(Microsoft\.[A-Za-z]+/[A-Za-z/]+/read)`", readme))
    assert listed == EXPORTER_READS
