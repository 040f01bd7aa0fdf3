"""Shared helpers of the asset tests (dashboard, alert rules, deployment files)."""

from __future__ import annotations

import importlib
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import unavailable

REPO = Path(__file__).resolve().parents[2]


def require_tool(name: str, install: str) -> str:
    """Path of a validator installed with the test extra (the venv's bin) or on PATH; skip without it
    outside CI, fail in CI."""
    local = Path(sys.executable).parent / name
    found = str(local) if os.access(local, os.X_OK) else shutil.which(name)
    if found:
        return found
    unavailable(f"{name} not found next to {sys.executable} or on PATH ({install})")


def require_module(name: str, install: str) -> Any:
    """An importable validator package; skip without it outside CI, fail in CI."""
    try:
        return importlib.import_module(name)
    except ImportError:
        unavailable(f"Python package {name} missing ({install})")


def require_binary(name: str, debian_path: str) -> str:
    """Path of a Prometheus binary; skip without it, except in CI (CI=true), where it must be installed."""
    found = debian_path if os.access(debian_path, os.X_OK) else shutil.which(name)
    if found:
        return found
    unavailable(f"{name} not found at {debian_path} or on PATH (apt-get install prometheus)")


@pytest.fixture(scope="session")
def promtool() -> str:
    return require_binary("promtool", "/usr/bin/promtool")


@pytest.fixture(scope="session")
def prometheus_binary() -> str:
    return require_binary("prometheus", "/usr/bin/prometheus")
