"""Waiting for a condition, and running the exporter's CLI as a child process."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def wait_until(check: Callable[[], T], timeout: float = 5.0, what: str = "the condition", interval: float = 0.02,
               tolerate: tuple[type[Exception], ...] = ()) -> T:
    """Call ``check`` until it returns something truthy and return that; fail naming ``what`` after ``timeout`` s.

    Exceptions of the ``tolerate`` types count as "not yet" (the last one is named in the failure).
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            result = check()
            if result:
                return result
        except tolerate as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}" + (f" (last error: {last_error})" if last_error else ""))
        time.sleep(interval)


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """``python -m exporter ARGS`` from the repository root; its exit code and output."""
    return subprocess.run([sys.executable, "-m", "exporter", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)
