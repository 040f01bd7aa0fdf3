"""The command line of a generator script: write its generated file, or ``--check`` that the committed one is current."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path


def write_or_check(output: Path, render: Callable[[], str], description: str, regenerate: str, argv: list[str] | None = None) -> int:
    """Write ``render()`` to ``output``; with ``--check``, exit 1 (naming ``regenerate``) when they differ."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--check", action="store_true", help=f"exit 1 if {output.name} is out of date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not output.exists() or output.read_text(encoding="utf-8") != text:
            print(f"{output} is out of date: run {regenerate}", file=sys.stderr)
            return 1
        return 0
    output.write_text(text, encoding="utf-8")
    print(f"wrote {output}")
    return 0
