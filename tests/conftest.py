"""Shared fixtures: promtool, and (in tests/e2e) the simulator and the real exporter process."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def require_tool(name: str, package: str = "prometheus") -> str:
    """Path of a tool from a Debian package; skip without it, except under CI=true where it fails."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} not found: install Debian's `{package}` package (make test does it as root)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def promtool() -> str:
    return require_tool("promtool")


def promtool_check_metrics(promtool: str, text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
