"""Hostile inputs the tests share."""

from __future__ import annotations


def yaml_bomb(levels: int = 9, where: str = "") -> str:
    """A "billion laughs" document: each level lists the previous one nine times (9**levels leaves).

    ``where`` is appended with ``{last}`` replaced by the last level's anchor name, e.g.
    ``"azure:\\n  cloud: *{last}\\n"`` to put the bomb under one key.
    """
    names = "abcdefghijklmnopqrstuvwxyz"[:levels]
    lines = [f"{names[0]}: &{names[0]} [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]" for prev, name in zip(names, names[1:], strict=False)]
    return "\n".join(lines) + "\n" + where.format(last=names[-1])
