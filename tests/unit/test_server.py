"""HTTP endpoints over a real loopback socket."""

from __future__ import annotations

import gzip
from collections.abc import Iterator

import pytest
import requests
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics

from exporter.armstats import ArmStatsSnapshot
from exporter.collector import SnapshotCollector
from exporter.config import PoolRef
from exporter.poller import PoolStatus, Snapshot
from exporter.server import ExporterApp, ExporterHTTPServer, parse_listen_address, serve

SUB = "00000000-0000-0000-0000-000000000000"


class Holder:
    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot


@pytest.fixture
def holder() -> Holder:
    return Holder(
        Snapshot(
            pools=(
                PoolStatus(PoolRef(SUB, "rg", "pool-a"), polled=True, up=False, last_success=None, last_error="server: <b>boom</b>"),
                PoolStatus(PoolRef(SUB, "rg", "pool-b")),
            ),
            arm=ArmStatsSnapshot(),
            interval=30,
        )
    )


@pytest.fixture
def base_url(holder: Holder) -> Iterator[str]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(lambda: holder.snapshot))
    server = ExporterHTTPServer(("127.0.0.1", 0), ExporterApp(registry, lambda: holder.snapshot, "/custom-metrics"))
    serve(server)
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_metrics_on_the_telemetry_path(base_url: str) -> None:
    response = requests.get(base_url + "/custom-metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert 'azure_standby_pool_up{pool="pool-a"' in response.text
    assert requests.get(base_url + "/metrics", timeout=5).status_code == 404


def test_gzip_when_accepted(base_url: str) -> None:
    response = requests.get(base_url + "/custom-metrics", headers={"Accept-Encoding": "gzip"}, timeout=5, stream=True)
    assert response.headers["Content-Encoding"] == "gzip"
    assert b"azure_standby_pool_up" in gzip.decompress(response.raw.read())


def test_openmetrics_when_negotiated(base_url: str) -> None:
    response = requests.get(base_url + "/custom-metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}, timeout=5)
    assert response.headers["Content-Type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")
    names = {family.name for family in parse_openmetrics(response.text)}
    assert "azure_standby_pool_up" in names


def test_landing_page_lists_pools_escaped(base_url: str) -> None:
    response = requests.get(base_url + "/", timeout=5)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
    assert 'href="/custom-metrics"' in response.text
    assert "pool-a" in response.text and "pool-b" in response.text and "not polled yet" in response.text
    assert "&lt;b&gt;boom&lt;/b&gt;" in response.text and "<b>boom" not in response.text


def test_healthz_and_readyz(base_url: str, holder: Holder) -> None:
    assert requests.get(base_url + "/healthz", timeout=5).status_code == 200
    assert requests.get(base_url + "/readyz", timeout=5).status_code == 503
    pools = tuple(PoolStatus(status.ref, polled=True) for status in holder.snapshot.pools)
    holder.snapshot = Snapshot(pools=pools, arm=ArmStatsSnapshot(), interval=30)
    assert requests.get(base_url + "/readyz", timeout=5).status_code == 200


def test_unknown_path_is_404_and_head_works(base_url: str) -> None:
    assert requests.get(base_url + "/nope", timeout=5).status_code == 404
    head = requests.head(base_url + "/healthz", timeout=5)
    assert head.status_code == 200 and head.content == b""


@pytest.mark.parametrize(
    ("address", "expected"),
    [(":9863", ("", 9863)), ("0.0.0.0:80", ("0.0.0.0", 80)), ("[::1]:9863", ("::1", 9863)), ("localhost:0", ("localhost", 0))],
)
def test_parse_listen_address(address: str, expected: tuple[str, int]) -> None:
    assert parse_listen_address(address) == expected


@pytest.mark.parametrize("address", ["9863", "host:", "host:port", ":70000", ""])
def test_parse_listen_address_rejects(address: str) -> None:
    with pytest.raises(ValueError):
        parse_listen_address(address)
