"""Configuration loading: good files load, every bad file names each problem by its dotted path."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.config import ConfigError, load_file, parse_duration

FIXTURES = Path(__file__).parent.parent / "fixtures" / "config"
BAD_FILES = sorted((FIXTURES / "bad").glob("*.yaml"))


def expectations(path: Path) -> list[str]:
    return [line.removeprefix("# expect: ").rstrip("\n") for line in path.read_text().splitlines() if line.startswith("# expect: ")]


def test_there_are_many_bad_files() -> None:
    assert len(BAD_FILES) >= 30


@pytest.mark.parametrize("path", BAD_FILES, ids=lambda p: p.stem)
def test_bad_file_names_every_problem(path: Path) -> None:
    expected = expectations(path)
    assert expected, f"{path.name} has no '# expect:' line"
    with pytest.raises(ConfigError) as caught:
        load_file(path)
    message = str(caught.value)
    for fragment in expected:
        assert fragment in message
    assert "Traceback" not in message


def test_minimal_file_gets_defaults() -> None:
    settings = load_file(FIXTURES / "good" / "minimal.yaml")
    assert settings.azure.cloud == "AzurePublicCloud"
    assert settings.azure.resource_manager_endpoint == "https://management.azure.com"
    assert settings.azure.token_scope == "https://management.azure.com/.default"
    assert settings.azure.api_versions == {"standby_pool": "2025-03-01", "container_instance": "2025-09-01", "compute": "2024-07-01"}
    assert (settings.azure.max_reads_per_second, settings.azure.max_read_burst) == (10, 50)
    assert (settings.polling.interval, settings.polling.timeout, settings.polling.concurrency, settings.polling.stale_after) == (60, 10, 8, 300)
    assert (settings.polling.member_refresh, settings.polling.pool_refresh) == (600, 600)
    assert settings.discovery is None
    assert (settings.sharding.index, settings.sharding.count) == (0, 1)
    [pool] = settings.pools
    assert (pool.subscription_id, pool.resource_group, pool.name, pool.kind) == (
        "00000000-0000-0000-0000-000000000000", "rg", "pool-a", "container_group",
    )


def test_full_file_overrides_everything() -> None:
    settings = load_file(FIXTURES / "good" / "full.yaml")
    assert settings.azure.cloud == "AzureChinaCloud"
    assert settings.azure.token_scope == "https://management.chinacloudapi.cn/.default"
    assert settings.azure.authority_host == "login.chinacloudapi.cn"
    assert settings.azure.resource_manager_endpoint == "http://127.0.0.1:8080"
    assert settings.azure.api_versions == {"standby_pool": "2024-03-01", "container_instance": "2023-05-01", "compute": "2024-03-01"}
    assert (settings.azure.max_reads_per_second, settings.azure.max_read_burst) == (0, 5)
    assert (settings.polling.interval, settings.polling.timeout, settings.polling.concurrency, settings.polling.stale_after) == (90, 2.5, 3, 3600)
    assert (settings.polling.member_refresh, settings.polling.pool_refresh) == (300, 1800)
    assert (settings.sharding.index, settings.sharding.count) == (1, 3)
    discovery = settings.discovery
    assert discovery is not None
    assert discovery.subscriptions == ("00000000-0000-0000-0000-000000000000", "11111111-1111-1111-1111-111111111111")
    assert (discovery.interval, discovery.resource_groups, discovery.tags, discovery.kinds) == (
        300, ("rg-a", "rg-b"), (("team", "web"),), ("virtual_machine",))
    assert discovery.include.pattern == "web-.*" and discovery.exclude is not None and discovery.exclude.pattern == ".*-test"
    assert [p.kind for p in settings.pools] == ["virtual_machine", "container_group"]
    # Subscription ids are GUIDs: normalised to lower case; names keep the operator's casing.
    assert [(p.subscription_id, p.resource_group, p.name) for p in settings.pools] == [
        ("aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa", "Rg.One_(x)", "Pool-One"),
        ("00000000-0000-0000-0000-000000000000", "rg", "pool-one"),
    ]


def test_discovery_alone_needs_no_pools() -> None:
    settings = load_file(FIXTURES / "good" / "discovery_only.yaml")
    assert settings.pools == ()
    assert settings.discovery is not None and settings.discovery.kinds == ("container_group", "virtual_machine")


@pytest.mark.parametrize(
    ("name", "tags", "wanted"),
    [
        ("web-prod", {"team": "web"}, True),
        ("web-test", {"team": "web"}, False),  # excluded
        ("api-prod", {"team": "web"}, False),  # not included
        ("web-prod", {"team": "data"}, False),  # tag differs
        ("web-prod", {}, False),  # tag missing
    ],
)
def test_discovery_filters(name: str, tags: dict[str, str], wanted: bool) -> None:
    discovery = load_file(FIXTURES / "good" / "full.yaml").discovery
    assert discovery is not None
    from exporter.config import PoolRef

    assert discovery.wants(PoolRef("00000000-0000-0000-0000-000000000000", "RG-A", name), tags) is wanted
    assert not discovery.wants(PoolRef("00000000-0000-0000-0000-000000000000", "rg-c", "web-prod"), {"team": "web"})


def test_example_config_is_valid() -> None:
    settings = load_file(Path(__file__).parents[2] / "config.example.yaml")
    assert len(settings.pools) == 1


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [("90s", 90), ("5m", 300), ("1h", 3600), ("250ms", 0.25), (15, 15), (2.5, 2.5), ("30", 30), (" 2m ", 120)],
)
def test_durations(raw: object, seconds: float) -> None:
    assert parse_duration(raw) == seconds


@pytest.mark.parametrize("raw", ["", "m", "5 minutes", "1d", -1, 0, "0s", True, None, [1]])
def test_bad_durations(raw: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(raw)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_file(tmp_path / "absent.yaml")


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_file(tmp_path)  # a directory
