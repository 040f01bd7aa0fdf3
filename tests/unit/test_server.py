"""HTTP endpoints over a real loopback socket."""

from __future__ import annotations

import gzip
from collections.abc import Iterator

import pytest
import requests
from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics

from exporter.armstats import ArmStatsSnapshot
from exporter.collector import Publisher
from exporter.config import PoolRef
from exporter.poller import PoolStatus, Snapshot
from exporter.server import ExporterApp, ExporterHTTPServer, parse_listen_address, serve

SUB = "00000000-0000-0000-0000-000000000000"


@pytest.fixture
def publisher() -> Publisher:
    return Publisher(
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
def base_url(publisher: Publisher) -> Iterator[str]:
    live = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=live)
    server = ExporterHTTPServer(("127.0.0.1", 0), ExporterApp(publisher, live, "/custom-metrics"))
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


def test_gzip_when_accepted_decodes_to_the_plain_body(base_url: str) -> None:
    response = requests.get(base_url + "/custom-metrics", headers={"Accept-Encoding": "gzip"}, timeout=5, stream=True)
    assert response.headers["Content-Encoding"] == "gzip"
    text = gzip.decompress(response.raw.read()).decode()  # two gzip members: cached snapshot + live part
    plain = requests.get(base_url + "/custom-metrics", timeout=5).text
    families = lambda body: sorted(f.name for f in text_string_to_metric_families(body))  # noqa: E731
    assert families(text) == families(plain)
    assert "azure_standby_pool_up" in families(text) and "process_cpu_seconds" in families(text)


def test_openmetrics_when_negotiated(base_url: str) -> None:
    response = requests.get(base_url + "/custom-metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}, timeout=5)
    assert response.headers["Content-Type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n") and response.text.count("# EOF") == 1
    names = {family.name for family in parse_openmetrics(response.text)}
    assert {"azure_standby_pool_up", "process_cpu_seconds"} <= names
    gzipped = requests.get(base_url + "/custom-metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0", "Accept-Encoding": "gzip"}, timeout=5)
    assert _exporter_lines(gzipped.text) == _exporter_lines(response.text) != []
    assert gzipped.text.endswith("# EOF\n") and gzipped.text.count("# EOF") == 1


def _exporter_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "azure_standby_pool_" in line]


def test_landing_page_lists_pools_escaped(base_url: str) -> None:
    response = requests.get(base_url + "/", timeout=5)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
    assert 'href="/custom-metrics"' in response.text
    assert "pool-a" in response.text and "pool-b" in response.text and "not polled yet" in response.text
    assert "&lt;b&gt;boom&lt;/b&gt;" in response.text and "<b>boom" not in response.text


def test_healthz_and_readyz(base_url: str, publisher: Publisher) -> None:
    assert requests.get(base_url + "/healthz", timeout=5).status_code == 200
    assert requests.get(base_url + "/readyz", timeout=5).status_code == 503
    pools = tuple(PoolStatus(status.ref, polled=True) for status in publisher.current.snapshot.pools)
    publisher.publish(Snapshot(pools=pools, arm=ArmStatsSnapshot(), interval=30))
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
