"""Hostile input and floods against the real exporter process.

YAML bombs, FIFOs, devices and oversized files as configuration or web configuration; 1,100 idle
connections under a 1024 descriptor limit; descriptor exhaustion; a reload smuggled in a GET body;
a basic-auth flood; a reload storm; log injection through the request path; signals during start-up.
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import requests
import yaml

from exporter.simulator import Simulator, SimulatorServer
from tests.e2e.conftest import REPO, SUB, ExporterProcess, pool_config
from tests.support.hostile import yaml_bomb

pytestmark = pytest.mark.e2e

RELOAD_OK = "azure_standby_pool_config_last_reload_successful"
CLOSED = "azure_standby_pool_web_connections_closed_total"


def bomb(levels: int = 9, where: str = "azure:\n  cloud: *{last}\n") -> str:
    return yaml_bomb(levels, where)


def run_cli(*args: str, limit_memory: bool = False) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1024**3, 1024**3))  # a bomb that expands dies here

    return subprocess.run(
        [sys.executable, "-m", "exporter", *args], cwd=REPO, capture_output=True, text=True, timeout=60,
        preexec_fn=limit if limit_memory else None,
    )


@pytest.fixture
def one_pool(simulator: tuple[Simulator, SimulatorServer]) -> SimulatorServer:
    sim, server = simulator
    sim.add_container_group_pool(SUB, "rg-one", "web", max_ready_capacity=2, running=2)
    return server


def swap(path: Path, content: str | bytes | None) -> None:
    """Replace ``path`` atomically with a file holding ``content``, or with a FIFO (``None``)."""
    staged = path.with_name(path.name + ".staged")
    staged.unlink(missing_ok=True)
    if content is None:
        os.mkfifo(staged)
    elif isinstance(content, bytes):
        staged.write_bytes(content)
    else:
        staged.write_text(content)
    os.replace(staged, path)


def count(exporter: ExporterProcess, fragment: str) -> int:
    return sum(fragment in line for line in list(exporter.lines))


# --- configuration files -------------------------------------------------------------------------


def test_a_yaml_bomb_is_refused_at_once_in_both_configuration_files(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(bomb())
    result = run_cli("--check-config", f"--config.file={config}", limit_memory=True)
    assert result.returncode == 2, result.stderr
    assert "not valid YAML: more than 100000 nodes once aliases are expanded" in result.stderr
    assert "Traceback" not in result.stderr and "MemoryError" not in result.stderr

    web = tmp_path / "web.yml"
    web.write_text(bomb(where="http_server_config:\n  http2: *{last}\n"))
    result = run_cli("--check-config", "--config.file=config.example.yaml", f"--web.config.file={web}", limit_memory=True)
    assert result.returncode == 2 and "more than 100000 nodes" in result.stderr and "Traceback" not in result.stderr


def test_a_bad_value_that_aliases_a_large_tree_is_quoted_short(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(bomb(levels=4))  # 6,561 leaves: within the budget, but the value is wrong
    result = run_cli("--check-config", f"--config.file={config}", limit_memory=True)
    assert result.returncode == 2
    problem = next(line for line in result.stderr.splitlines() if "azure.cloud" in line)
    assert "must be one of AzurePublicCloud" in problem and len(problem) < 200


def test_special_and_oversized_configuration_files_are_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    big = tmp_path / "big.yaml"
    big.write_text("# padding\n" * 200_000)
    for path, expected in [(fifo, "not a regular file (a FIFO)"), (Path("/dev/zero"), "not a regular file (a character device)"),
                           (big, "2000000 bytes, more than the 1 MiB allowed"), (tmp_path, "not a regular file (a directory)")]:
        result = run_cli(f"--config.file={path}", "--web.listen-address=127.0.0.1:0")  # a real start, not --check-config
        assert result.returncode == 2, (path, result.stderr)
        assert expected in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_a_fifo_swapped_in_fails_the_reload_and_the_restored_file_recovers(one_pool: SimulatorServer, start_exporter) -> None:
    config = pool_config(one_pool, ("rg-one", "web"))
    exporter = start_exporter(config, one_pool)
    assert exporter.value(RELOAD_OK) == 1
    swap(exporter.config_file, None)
    exporter.process.send_signal(signal.SIGHUP)
    exporter.wait_for(lambda: exporter.value(RELOAD_OK) == 0, what="the reload failed")
    assert any("not a regular file (a FIFO)" in line and 'msg="invalid configuration"' in line for line in exporter.lines)
    assert exporter.get("/healthz").status_code == 200
    swap(exporter.config_file, yaml.safe_dump(config))
    exporter.process.send_signal(signal.SIGHUP)
    exporter.wait_for(lambda: exporter.value(RELOAD_OK) == 1, what="the reload recovered")


def test_the_web_config_swapped_for_a_fifo_a_bomb_or_a_huge_file_never_blocks_requests(
    one_pool: SimulatorServer, start_exporter, tmp_path: Path
) -> None:
    web = tmp_path / "web.yml"
    alice = "basic_auth_users:\n  alice: " + bcrypt.hashpw(b"alice-secret", bcrypt.gensalt(rounds=4)).decode() + "\n"
    swap(web, alice)
    exporter = start_exporter(pool_config(one_pool, ("rg-one", "web")), one_pool, f"--web.config.file={web}", auth=("alice", "alice-secret"))
    for bad, problem in [(None, "not a regular file (a FIFO)"), (bomb(where="http_server_config:\n  http2: *{last}\n"), "more than 100000 nodes"),
                         (b"#" * (10 * 1024 * 1024), "more than the 1 MiB allowed")]:
        swap(web, bad)
        exporter.wait_for(lambda problem=problem: count(exporter, problem) >= 1, timeout=10, what=problem)
        for path in ("/healthz", "/metrics"):
            assert exporter.get(path, timeout=5).status_code == 200  # the last good copy is served
    bob = "  bob: " + bcrypt.hashpw(b"bob-secret", bcrypt.gensalt(rounds=4)).decode() + "\n"
    swap(web, alice + bob)
    exporter.wait_for(lambda: exporter.get("/healthz", auth=("bob", "bob-secret")).status_code == 200, timeout=10, what="bob accepted")


# --- connections ---------------------------------------------------------------------------------


def _limit_descriptors(limit: int) -> Any:
    def preexec() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    return preexec


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _threads(pid: int) -> int:
    return int(next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("Threads:")).split()[1])


@pytest.fixture
def many_descriptors() -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 4096:
        pytest.skip(f"the test process needs 4096 descriptors, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 4096), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _open_idle(port: int, number: int) -> list[socket.socket]:
    return [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(number)]


def test_1100_idle_connections_under_a_1024_descriptor_limit(
    one_pool: SimulatorServer, start_exporter, many_descriptors: None, capsys: pytest.CaptureFixture[str]
) -> None:
    exporter = start_exporter(pool_config(one_pool, ("rg-one", "web"), interval="30s"), one_pool, preexec_fn=_limit_descriptors(1024))
    assert 'max_connections=512' in next(line for line in exporter.lines if 'msg="exporter started"' in line)
    port = int(exporter.url.rsplit(":", 1)[1])
    idle = _open_idle(port, 1100)
    try:
        pid = exporter.process.pid
        cpu_before = _cpu_seconds(pid)
        time.sleep(2)
        cpu = _cpu_seconds(pid) - cpu_before
        response = exporter.get("/metrics", timeout=5)  # the legitimate scrape, within 5 s
        assert response.status_code == 200 and "azure_standby_pool_up" in response.text
        threads, fds = _threads(pid), len(os.listdir(f"/proc/{pid}/fd"))
        closed = exporter.value(CLOSED, reason="limit")
        assert threads < 64  # not one thread per connection
        assert fds <= 1024 and closed is not None and closed >= 1100 - 512
        assert cpu < 1.0  # no busy loop while 1,100 clients sit idle
        with capsys.disabled():
            print(f"\n[1,100 idle connections, RLIMIT_NOFILE 1024] threads={threads} fds={fds} cpu_in_2s={cpu:.2f}s "
                  f"scrape={response.elapsed.total_seconds() * 1000:.0f}ms closed_at_limit={closed:.0f}")
    finally:
        for sock in idle:
            sock.close()


def test_running_out_of_descriptors_is_logged_without_a_busy_loop_and_recovers(many_descriptors: None) -> None:
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.support.http_child", "100000", "0"], cwd=REPO, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_limit_descriptors(256),
    )
    lines: list[str] = []
    assert child.stdout is not None and child.stderr is not None
    port = int(child.stdout.readline())
    threading.Thread(target=lambda: lines.extend(child.stderr), daemon=True).start()  # type: ignore[arg-type]
    idle = _open_idle(port, 400)  # more than the child can hold: accept() fails with EMFILE
    try:
        deadline = time.monotonic() + 20
        while not any("out of file descriptors" in line for line in lines):
            assert time.monotonic() < deadline, "no log line about the descriptors\n" + "".join(lines)
            time.sleep(0.1)
        cpu_before = _cpu_seconds(child.pid)
        time.sleep(2)
        assert _cpu_seconds(child.pid) - cpu_before < 1.0  # asyncio pauses accepting for a second: no spin
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=15).status_code == 200  # idle connections made room
        logged = [line for line in lines if "out of file descriptors" in line]
        assert all("level=error" in line for line in logged) and len(logged) < 30
    finally:
        for sock in idle:
            sock.close()
        child.stdin.close()  # type: ignore[union-attr]
        child.wait(10)


def test_a_trickling_client_is_cut_off_by_the_head_deadline(one_pool: SimulatorServer, start_exporter) -> None:
    exporter = start_exporter(pool_config(one_pool, ("rg-one", "web")), one_pool)
    port = int(exporter.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sent = 0
        try:
            for byte in b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 1000:  # 1 byte / 50 ms: 52 s in all
                sock.send(bytes([byte]))
                sent += 1
                time.sleep(0.05)
        except OSError:
            pass
        assert sent < 1000  # the exporter closed it (head deadline 10 s), long before the head could end
    exporter.wait_for(lambda: exporter.value(CLOSED, reason="head_timeout") == 1, what="the close counted")


# --- request smuggling ---------------------------------------------------------------------------


def test_a_reload_smuggled_in_a_get_body_is_not_run(one_pool: SimulatorServer, start_exporter) -> None:
    exporter = start_exporter(pool_config(one_pool, ("rg-one", "web")), one_pool, "--web.enable-lifecycle")
    port = int(exporter.url.rsplit(":", 1)[1])
    hidden = b"POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
    for framing in (b"Content-Length: %d\r\n\r\n" % len(hidden) + hidden,
                    b"Transfer-Encoding: chunked\r\n\r\n%x\r\n" % len(hidden) + hidden + b"\r\n0\r\n\r\n"):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + framing + b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        assert answer.count(b"HTTP/1.1 200 ") == 2 and b"configuration reloaded" not in answer
    assert exporter.get("/healthz").status_code == 200  # every request before this one is answered and logged
    assert count(exporter, 'msg="reloading configuration"') == 0
    assert exporter.post("/-/reload").status_code == 200  # a real one is run (and logged)
    assert count(exporter, 'msg="reloading configuration"') == 1


# --- basic-auth flood ----------------------------------------------------------------------------


def test_an_auth_flood_gets_429_and_a_verified_client_keeps_being_served(
    one_pool: SimulatorServer, start_exporter, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    web = tmp_path / "web.yml"
    swap(web, "basic_auth_users:\n  prometheus: " + bcrypt.hashpw(b"scrape-secret", bcrypt.gensalt(rounds=10)).decode() + "\n")
    exporter = start_exporter(pool_config(one_pool, ("rg-one", "web")), one_pool, f"--web.config.file={web}", auth=("prometheus", "scrape-secret"))
    assert exporter.get("/metrics").status_code == 200  # verified once, before the flood
    stop = threading.Event()
    statuses: list[int] = []

    def attacker(number: int) -> None:
        with requests.Session() as s:
            while not stop.is_set():
                try:
                    statuses.append(s.get(exporter.url + "/metrics", auth=("prometheus", f"guess-{number}"), timeout=20).status_code)
                except requests.RequestException:
                    statuses.append(0)

    flood = [threading.Thread(target=attacker, args=(n,), daemon=True) for n in range(200)]
    for thread in flood:
        thread.start()
    try:
        time.sleep(1)
        scrapes = [exporter.get("/metrics", timeout=5) for _ in range(10)]  # each within Prometheus' usual timeout
        assert all(r.status_code == 200 and "azure_standby_pool_up" in r.text for r in scrapes)
    finally:
        stop.set()
        for thread in flood:
            thread.join(30)
    refused, failed = statuses.count(429), statuses.count(401)
    assert refused > 0 and failed > 0 and set(statuses) <= {401, 429}
    assert exporter.value("azure_standby_pool_web_auth_failures_total") == failed  # a 429 is not an auth failure
    assert exporter.value("azure_standby_pool_web_auth_throttled_total") == refused
    with capsys.disabled():
        print(f"\n[auth flood, 200 clients, bcrypt cost 10] 401={failed} 429={refused} "
              f"verified scrapes: max {max(r.elapsed.total_seconds() for r in scrapes) * 1000:.0f}ms, all 200")


# --- reload storm --------------------------------------------------------------------------------


def test_a_reload_storm_does_not_starve_discovery(simulator: tuple[Simulator, SimulatorServer], start_exporter) -> None:
    sim, server = simulator
    sim.add_container_group_pool(SUB, "rg-web", "web", max_ready_capacity=1)
    config = {
        "azure": {"resource_manager_endpoint": server.url},
        "polling": {"interval": "1s", "timeout": "2s", "stale_after": "1m"},
        "discovery": {"subscriptions": [SUB], "interval": "2s"},
    }
    exporter = start_exporter(config, server)
    exporter.wait_for(lambda: count(exporter, 'msg="discovery done"') >= 1, what="the first discovery")
    before = count(exporter, 'msg="discovery done"')
    for _ in range(20):  # a SIGHUP every 0.4 s for 8 s: more often than discovery.interval
        exporter.process.send_signal(signal.SIGHUP)
        time.sleep(0.4)
    assert count(exporter, 'msg="configuration reloaded"') >= 2
    assert count(exporter, 'msg="discovery done"') - before >= 2  # discovery still ran on its own clock


# --- log injection -------------------------------------------------------------------------------


def test_request_paths_cannot_forge_log_lines(one_pool: SimulatorServer, start_exporter) -> None:
    exporter = start_exporter(pool_config(one_pool, ("rg-one", "web")), one_pool)
    forged = "/x%1b%5b31m%0d%07%e2%80%a8%e2%80%a9%c2%85%7f%0ats=2026-01-01T00:00:00Z level=error msg=forged"
    assert exporter.get(forged).status_code == 404
    assert exporter.get("/healthz").status_code == 200
    exporter.wait_for(lambda: count(exporter, 'path=/healthz') >= 1, what="the request logged")
    logged = next(line for line in exporter.lines if "msg=forged" in line)
    assert logged.startswith("ts=") and 'msg="http request"' in logged and "\\x1b[31m\\r\\x07\\u2028\\u2029\\u0085\\x7f\\n" in logged
    assert not any(line.startswith("ts=2026-01-01") for line in exporter.lines)
    assert not any(ch in line for line in exporter.lines for ch in "\x1b\x07\x85\u2028\u2029\x7f")


# --- signals during start-up ---------------------------------------------------------------------


def _catches_sighup(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status").read_text()
    caught = int(next(line for line in status.splitlines() if line.startswith("SigCgt:")).split()[1], 16)
    return bool(caught & (1 << (signal.SIGHUP - 1)))


def test_sighup_during_start_up_never_kills_the_exporter(one_pool: SimulatorServer, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(pool_config(one_pool, ("rg-one", "web"))))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "IDENTITY_", "MSI_"))}
    env.update(IDENTITY_ENDPOINT=one_pool.identity_endpoint, IDENTITY_HEADER=one_pool.identity_header, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "exporter", f"--config.file={config}", "--web.listen-address=127.0.0.1:0"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    lines: list[str] = []
    assert process.stderr is not None
    threading.Thread(target=lambda: lines.extend(process.stderr), daemon=True).start()  # type: ignore[arg-type]
    try:
        deadline = time.monotonic() + 20
        while process.poll() is None and not _catches_sighup(process.pid):  # handlers are installed before start-up work
            assert time.monotonic() < deadline
            time.sleep(0.001)
        signals = 0
        while not any('msg="exporter started"' in line for line in lines):  # a SIGHUP storm through all of start-up
            assert process.poll() is None, "killed by a SIGHUP during start-up:\n" + "".join(lines)
            assert time.monotonic() < deadline, "".join(lines)
            process.send_signal(signal.SIGHUP)
            signals += 1
            time.sleep(0.005)
        process.send_signal(signal.SIGHUP)  # right after "exporter started"
        time.sleep(0.5)
        assert process.poll() is None and signals > 0
        while not any('msg="configuration reloaded"' in line for line in lines):  # the SIGHUPs were acted on
            assert time.monotonic() < deadline + 10, "".join(lines)
            time.sleep(0.05)
    finally:
        process.terminate()
        process.wait(10)
