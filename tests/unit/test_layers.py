"""Layers import only downward (CONTRIBUTING.md): each module's imports from the exporter stay within its allow-list."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "exporter"

# module -> the exporter modules it may import (the simulator is a separate program over HTTP).
ALLOWED: dict[str, set[str]] = {
    # foundations: nothing from the exporter
    "boundedfile": set(), "logs": set(), "credentials": set(), "armstats": set(), "model": set(), "basicauth": set(), "server": set(),
    "config": {"boundedfile", "model"},
    "resources": {"config", "model"},
    "arm": {"credentials"},
    # the data of one cycle, and the cycle that builds it
    "snapshot": {"armstats", "config", "model"},
    "poller": {"arm", "armstats", "config", "model", "resources", "snapshot"},
    # snapshot -> metric families -> bytes
    "collector": {"model", "snapshot"},
    "exposition": {"collector", "snapshot"},
    # HTTP: the transport (server), the pages and their routes (webapp), what they show
    "webconfig": {"boundedfile"},
    "landing": {"snapshot"},
    "webapp": {"basicauth", "collector", "exposition", "landing", "server", "webconfig"},
    "reload": {"collector", "config", "webapp"},
    # start-up helpers and wiring
    "preflight": {"arm", "config", "credentials", "model", "resources"},
    "demo": {"arm", "config", "simulator"},
    "cli": set(),  # the wiring may import anything
}


def exporter_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                found.add(node.module.split(".")[0])
            elif node.level == 1:
                found.update(alias.name for alias in node.names)
            elif node.module and node.module.startswith("exporter."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(alias.name.split(".")[1] for alias in node.names if alias.name.startswith("exporter."))
    modules = {p.stem for p in PACKAGE.glob("*.py")} | {p.name for p in PACKAGE.iterdir() if p.is_dir()}
    return (found & modules) - {"__init__"}


@pytest.mark.parametrize("module", sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__")))
def test_module_imports_only_downward(module: str) -> None:
    assert module in ALLOWED, f"exporter/{module}.py is new: give it a place in the layers (ALLOWED here, CONTRIBUTING.md)"
    if module == "cli":
        return
    upward = exporter_imports(PACKAGE / f"{module}.py") - ALLOWED[module]
    assert not upward, f"exporter/{module}.py imports {sorted(upward)}, above or beside its layer"
