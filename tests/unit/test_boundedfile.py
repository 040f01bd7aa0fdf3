"""exporter.boundedfile: only small regular files are read; YAML aliases cannot blow a document up."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from exporter.boundedfile import FileProblem, YamlTooComplex, load_yaml, read_bounded, short_repr
from exporter.config import ConfigError, load_file
from tests.support.hostile import yaml_bomb


def test_a_regular_file_within_the_cap_is_read(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    assert read_bounded(path, limit=100) == b"x" * 100
    with pytest.raises(FileProblem, match="101 bytes, more than the 100 bytes allowed"):
        path.write_bytes(b"x" * 101)
        read_bounded(path, limit=100)


@pytest.mark.parametrize(("make", "kind"), [(os.mkfifo, "a FIFO"), (os.mkdir, "a directory")])
def test_special_files_are_refused_without_blocking(tmp_path: Path, make: object, kind: str) -> None:
    path = tmp_path / "special"
    make(path)  # type: ignore[operator]
    with pytest.raises(FileProblem, match=f"not a regular file \\({kind}\\)"):
        read_bounded(path)


def test_devices_and_missing_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(FileProblem, match="not a regular file \\(a character device\\)"):
        read_bounded("/dev/zero")
    with pytest.raises(FileProblem, match="file not found"):
        read_bounded(tmp_path / "absent")


def test_aliases_within_the_budget_load_as_usual() -> None:
    text = "defaults: &d {interval: 30s}\npolling: {<<: *d, timeout: 5s}\nsub: &s abc\nother: *s\n"
    assert load_yaml(text) == {"defaults": {"interval": "30s"}, "polling": {"interval": "30s", "timeout": "5s"}, "sub": "abc", "other": "abc"}
    assert load_yaml(yaml_bomb(4))["d"][0][0][0] == ["lol"] * 9  # 6,561 leaves: allowed
    assert load_yaml("") is None


def test_billion_laughs_is_refused_before_it_is_built() -> None:
    with pytest.raises(YamlTooComplex, match="more than 100000 nodes once aliases are expanded"):
        load_yaml(yaml_bomb(9))


def test_a_merge_key_bomb_is_refused() -> None:
    lines = ["l0: &l0 {a: 1, b: 2}"] + [f"l{i}: &l{i} {{<<: [*l{i - 1}, *l{i - 1}]}}" for i in range(1, 25)]
    with pytest.raises(YamlTooComplex):
        load_yaml("\n".join(lines))


def test_too_many_aliases_and_self_reference_are_refused() -> None:
    with pytest.raises(YamlTooComplex, match="more than 1000 aliases"):
        load_yaml("a: &a x\nb: [" + ", ".join(["*a"] * 1001) + "]\n")
    with pytest.raises(YamlTooComplex, match="refers to a node that contains it"):
        load_yaml("a: &a [1, *a]\n")


def test_deep_nesting_is_a_yaml_error() -> None:
    with pytest.raises((yaml.YAMLError, RecursionError)):
        load_yaml("[" * 100_000 + "]" * 100_000)


def test_short_repr_never_walks_a_large_value() -> None:
    big = yaml.safe_load(yaml_bomb(9))  # built by PyYAML with shared lists: a full repr would be gigabytes
    text = short_repr(big)
    assert len(text) <= 40 and text.endswith("...")
    assert short_repr("short") == "'short'"
    assert short_repr("x" * 1000) == short_repr("x" * 10**6)


def test_config_errors_quote_values_short(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml_bomb(4) + "azure:\n  cloud: *d\n")
    with pytest.raises(ConfigError) as caught:
        load_file(path)
    problem = next(p for p in caught.value.problems if p.startswith("azure.cloud"))
    assert len(problem) < 150
    path.write_text(yaml_bomb(9) + "azure:\n  cloud: *i\n")
    with pytest.raises(ConfigError, match="not valid YAML: more than 100000 nodes"):
        load_file(path)
