"""Scrape latency: synthetic snapshots served by the exporter's HTTP server in a subprocess.

The server process (``python -m bench.scrape --serve``) builds the snapshot, times prometheus-client's
``generate_latest`` on it (what a scrape would cost if it rendered at scrape time), publishes it the
way the exporter does (``Publisher`` renders once), and serves ``ExporterApp`` on a loopback port.
This process is the client: one keep-alive ``http.client`` connection, timed request to last byte.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import math
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from exporter import model
from exporter.armstats import ArmStatsSnapshot
from exporter.config import PoolRef
from exporter.snapshot import PoolData, PoolStatus, Snapshot

from .procs import REPO

SUBSCRIPTION = "00000000-0000-0000-0000-00000000be00"
# What Prometheus 2.x/3.x sends by default (scrape_protocols: OpenMetrics 1.0.0, 0.0.1, then text 0.0.4).
PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
                     "text/plain;version=0.0.4;q=0.5,*/*;q=0.25")
MODES = {
    "openmetrics+gzip": {"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"},
    "text, no gzip": {"Accept": "text/plain;version=0.0.4", "Accept-Encoding": "identity"},
}


def build_snapshot(pools: int, members: int, subscription: str = SUBSCRIPTION, resource_groups: int = 50) -> Snapshot:
    """``pools`` healthy container group pools with ``members`` ready members each, as a poll would publish them."""
    now = time.time()
    statuses = []
    for index in range(pools):
        name = f"pool-{index:05d}"
        ref = PoolRef(subscription, f"rg-bench-{index % resource_groups:03d}", name)
        runtime = model.RuntimeView(
            instance_counts=tuple(model.InstanceCount("", state, members if state == "Running" else 0)
                                  for state in model.CONTAINER_GROUP_POOL_STATES),
            provisioning_state="Succeeded", health_state="healthy",
        )
        pool = model.Pool(name=name, location="westeurope", provisioning_state="Succeeded", max_ready_capacity=members)
        group_members = tuple(model.Member(name=f"{name}_{member:08x}", provisioning_state="Succeeded", state="Running", ready=True)
                              for member in range(members))
        statuses.append(PoolStatus(ref, polled=True, up=True, last_success=now, poll_duration=0.25, resource_up=True, members_up=True,
                                   data=PoolData(pool=pool, runtime=runtime, members=group_members)))
    operations = {"runtime_view": pools, "pool_list": pools, "container_group_list": pools, "container_group": pools * members}
    arm = ArmStatsSnapshot(requests={(subscription, operation, "200"): count for operation, count in operations.items()},
                           remaining_reads={subscription: 249}, remaining_global_reads={subscription: 3749})
    return Snapshot(pools=tuple(statuses), arm=arm, interval=60.0, cycle_duration=12.5, subscriptions=(subscription,))


def count_series(text: bytes) -> int:
    return sum(1 for line in text.splitlines() if line and not line.startswith(b"#"))


def shape_for(series: int) -> tuple[int, int]:
    """(pools, members) whose snapshot renders about ``series`` series (about 100 series per pool)."""
    from exporter.exposition import render

    base = count_series(render(build_snapshot(1, 0)).text)
    per_pool = count_series(render(build_snapshot(2, 0)).text) - base
    pools = max(1, round(series / 100))
    members = max(0, round((series - (base - per_pool)) / pools) - per_pool)
    return pools, members


# ---- the server side ------------------------------------------------------------------------------

def serve(pools: int, members: int, max_seconds: float, max_samples: int) -> None:
    from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector, generate_latest

    from exporter.collector import SnapshotCollector
    from exporter.exposition import Publisher
    from exporter.server import HttpServer
    from exporter.webapp import ExporterApp

    snapshot = build_snapshot(pools, members)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(lambda: snapshot))
    generate_latest(registry)  # warm-up
    durations: list[float] = []
    budget_end = time.perf_counter() + max_seconds
    while len(durations) < max_samples and (len(durations) < 3 or time.perf_counter() < budget_end):
        started = time.perf_counter()
        text = generate_latest(registry)
        durations.append(time.perf_counter() - started)
    started = time.perf_counter()
    publisher = Publisher(snapshot)
    render_seconds = time.perf_counter() - started
    exposition = publisher.current.exposition
    gzipped = {fmt: exposition.gzipped(fmt) for fmt in (True, False)}  # what the first scrapes would build
    live = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=live)
    PlatformCollector(registry=live)
    server = HttpServer(("127.0.0.1", 0), ExporterApp(publisher, live, "/metrics"))
    server.start()
    print(json.dumps({
        "port": server.address[1], "series": count_series(text), "generate_latest": durations,
        "render": render_seconds, "text_bytes": len(exposition.text), "gzip_bytes": len(gzipped[True]),
    }), flush=True)
    sys.stdin.read()  # until the client closes our stdin
    server.stop()


# ---- the client side ------------------------------------------------------------------------------

@dataclass
class ScrapeResult:
    target: int
    series: int
    pools: int
    members: int
    generate_latest: list[float]
    render: float
    text_bytes: int
    gzip_bytes: int
    latencies: dict[str, list[float]] = field(default_factory=dict)
    body_bytes: dict[str, int] = field(default_factory=dict)

    def p(self, mode: str, quantile: float) -> float:
        return percentile(self.latencies[mode], quantile)

    @property
    def generate_latest_median(self) -> float:
        return statistics.median(self.generate_latest)


def percentile(values: list[float], quantile: float) -> float:
    """Nearest-rank percentile (quantile in 0..1)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(quantile * len(ordered) - 1e-9)))
    return ordered[rank - 1]


def _check_body(mode: str, response: http.client.HTTPResponse, body: bytes, series: int) -> None:
    if response.status != 200:
        raise RuntimeError(f"/metrics answered {response.status}")
    if response.getheader("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    is_openmetrics = (response.getheader("Content-Type") or "").startswith("application/openmetrics-text")
    if mode.startswith("openmetrics") and not (is_openmetrics and body.endswith(b"# EOF\n")):
        raise RuntimeError(f"expected a complete OpenMetrics body, got {response.getheader('Content-Type')}")
    if count_series(body) < series:
        raise RuntimeError(f"/metrics has {count_series(body)} series, fewer than the snapshot's {series}")


def measure(target: int, *, samples: int = 200, warmup: int = 20, gl_seconds: float = 8.0, gl_max: int = 50,
            log: Any = print) -> ScrapeResult:
    pools, members = shape_for(target)
    process = subprocess.Popen([sys.executable, "-m", "bench.scrape", "--serve", f"--pools={pools}", f"--members={members}",
                                f"--gl-seconds={gl_seconds}", f"--gl-max={gl_max}"],
                               cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdin is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError("the scrape server did not start")
        info = json.loads(line)
        result = ScrapeResult(target, info["series"], pools, members, info["generate_latest"], info["render"],
                              info["text_bytes"], info["gzip_bytes"])
        connection = http.client.HTTPConnection("127.0.0.1", info["port"], timeout=30)
        try:
            for mode, headers in MODES.items():
                durations: list[float] = []
                for index in range(warmup + samples):
                    started = time.perf_counter()
                    connection.request("GET", "/metrics", headers=headers)
                    response = connection.getresponse()
                    body = response.read()
                    elapsed = time.perf_counter() - started
                    if index == 0:
                        _check_body(mode, response, body, result.series)
                        result.body_bytes[mode] = len(body)
                    if index >= warmup:
                        durations.append(elapsed)
                result.latencies[mode] = durations
        finally:
            connection.close()
        log(f"[scrape] {result.series} series: " + ", ".join(
            f"{mode} p50 {result.p(mode, 0.5) * 1000:.2f} ms p99 {result.p(mode, 0.99) * 1000:.2f} ms" for mode in MODES)
            + f"; generate_latest median {result.generate_latest_median * 1000:.1f} ms over {len(result.generate_latest)}")
        return result
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scrape", description=__doc__)
    parser.add_argument("--serve", action="store_true", required=True)
    parser.add_argument("--pools", type=int, required=True)
    parser.add_argument("--members", type=int, required=True)
    parser.add_argument("--gl-seconds", type=float, default=8.0, help="time budget for timing generate_latest")
    parser.add_argument("--gl-max", type=int, default=50, help="at most this many generate_latest timings")
    args = parser.parse_args(argv)
    serve(args.pools, args.members, args.gl_seconds, args.gl_max)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
