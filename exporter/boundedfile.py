"""Operator-supplied files read with bounds: regular files only, a size cap, YAML with an alias budget.

A FIFO, ``/dev/zero`` or a 10 MB file must not hang or exhaust the process, and a few hundred bytes of
nested YAML aliases (a "billion laughs" document) must not expand into gigabytes. PyYAML shares an
aliased node instead of copying it, so the danger is anything that walks the value as a tree (a
``repr`` in an error message, merge keys): the composed node graph is measured before anything is
constructed from it, counting every alias as a full copy of what it points to.
"""

from __future__ import annotations

import os
import reprlib
import stat

import yaml

MAX_FILE_BYTES = 1024 * 1024  # configuration and web configuration files, certificates, keys, CA bundles
MAX_ALIASES = 1000  # alias uses in one YAML document
MAX_NODES = 100_000  # nodes of a YAML document with every alias expanded (5,000 pools need about 45,000)


class FileProblem(Exception):
    """A file that cannot be read, or is not a small regular file; the message names the file."""


class ProblemsError(Exception):
    """Every problem found in an operator's file, each ``dotted.path: message``; ``title`` names the file's kind."""

    title = "invalid file"

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{self.title}:\n" + "\n".join(f"  - {p}" for p in problems))


class Problems:
    """Collects problems while an operator's file is read, so one error reports all of them."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def problem(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")


def read_bounded(path: str | os.PathLike[str], limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; FileProblem otherwise, without blocking.

    The file is opened non-blocking (a FIFO without a writer opens at once) and checked with
    ``fstat`` on the opened descriptor, so a file swapped in between a check and the read is caught.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise FileProblem(f"{path}: file not found") from None
    except OSError as exc:
        raise FileProblem(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FileProblem(f"{path}: cannot read: not a regular file ({_kind(info.st_mode)})")
        if info.st_size > limit:
            raise FileProblem(f"{path}: cannot read: {info.st_size} bytes, more than the {_size(limit)} allowed")
        chunks: list[bytes] = []
        total = 0
        while chunk := os.read(fd, min(65536, limit + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:  # grew while being read
                raise FileProblem(f"{path}: cannot read: more than the {_size(limit)} allowed")
        return b"".join(chunks)
    except OSError as exc:
        raise FileProblem(f"{path}: cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a plain file"


def _size(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MiB" if limit % (1024 * 1024) == 0 else f"{limit} bytes"


class YamlTooComplex(yaml.YAMLError):
    """A YAML document over the alias or expanded-size budget."""


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: bytes | str, *, max_aliases: int = MAX_ALIASES, max_nodes: int = MAX_NODES) -> object:
    """``yaml.safe_load`` of one document, refused (YamlTooComplex) when aliases would blow it up."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_budget(node, max_aliases, max_nodes)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _check_budget(root: yaml.Node, max_aliases: int, max_nodes: int) -> None:
    """Count alias uses and the size of the document with aliases expanded, without expanding it.

    A node reached a second time is an alias (the composer shares the anchored node). Sizes are
    memoised per node, so this is linear in the distinct nodes; a node that contains itself is refused.
    """
    sizes: dict[int, int] = {}
    seen: set[int] = set()
    aliases = 0
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    open_nodes: set[int] = set()
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            open_nodes.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in _children(node))
            if sizes[key] > max_nodes:
                raise YamlTooComplex(f"more than {max_nodes} nodes once aliases are expanded")
            continue
        if key in seen:
            aliases += 1
            if aliases > max_aliases:
                raise YamlTooComplex(f"more than {max_aliases} aliases")
            if key in open_nodes:
                raise YamlTooComplex("an alias refers to a node that contains it")
            continue
        seen.add(key)
        children = _children(node)
        if not children:
            sizes[key] = 1
            continue
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in reversed(children))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


_REPR = reprlib.Repr()
_REPR.maxlevel = 3
_REPR.maxstring = 60
_REPR.maxother = 60
for _name in ("maxlist", "maxtuple", "maxdict", "maxset", "maxfrozenset", "maxdeque", "maxarray"):
    setattr(_REPR, _name, 4)


def short_repr(value: object, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters, built without ever walking more than a few elements."""
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
