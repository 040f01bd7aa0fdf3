"""Shared helpers of the asset tests (dashboard, alert rules, deployment files)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def require_binary(name: str, debian_path: str) -> str:
    """Path of a Prometheus binary; skip without it, except in CI (CI=true), where it must be installed."""
    found = debian_path if os.access(debian_path, os.X_OK) else shutil.which(name)
    if found:
        return found
    message = f"{name} not found at {debian_path} or on PATH (apt-get install prometheus)"
    if in_ci():
        pytest.fail(f"{message}; CI must install it")
    pytest.skip(message)


@pytest.fixture(scope="session")
def promtool() -> str:
    return require_binary("promtool", "/usr/bin/promtool")


@pytest.fixture(scope="session")
def prometheus_binary() -> str:
    return require_binary("prometheus", "/usr/bin/prometheus")
