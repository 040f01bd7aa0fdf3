"""Shared fixtures: promtool, and (in tests/e2e) the simulator and the real exporter process."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import NoReturn

import pytest


def in_ci() -> bool:
    """CI sets CI (.ci/run exports CI=true): there a missing tool fails its test instead of skipping it."""
    return os.environ.get("CI", "").lower() not in ("", "0", "false")


def unavailable(message: str) -> NoReturn:
    """A test's tool is missing: skip it, or in CI fail it (CI must install every tool)."""
    if in_ci():
        pytest.fail(f"{message}; CI must install it")
    pytest.skip(message)


def require_tool(name: str, package: str = "prometheus") -> str:
    """Path of a tool from a Debian package; skip without it, except in CI where it fails."""
    path = shutil.which(name)
    if path is None:
        unavailable(f"{name} not found: install Debian's `{package}` package (make test does it as root)")
    return path


@pytest.fixture(scope="session")
def promtool() -> str:
    return require_tool("promtool")


def promtool_check_metrics(promtool: str, text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
