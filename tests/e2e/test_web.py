"""--web.config.file against the real exporter process: real TLS, mutual TLS, basic auth, live reload of the file."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
import requests

from exporter.simulator import Simulator, SimulatorServer
from tests.e2e.conftest import SUB, ExporterProcess, pool_config
from tests.support.process import run_cli
from tests.support.tls import TlsFiles, make_tls_files

pytestmark = pytest.mark.e2e

TLS = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
MTLS = TLS + "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def web_file(pki: TlsFiles) -> Iterator[Path]:
    """The web config file, next to the certificates its relative names refer to; removed afterwards."""
    path = pki.ca_cert.parent / "web.yml"
    yield path
    path.unlink(missing_ok=True)


@pytest.fixture
def one_pool(simulator: tuple[Simulator, SimulatorServer]) -> SimulatorServer:
    sim, server = simulator
    sim.add_container_group_pool(SUB, "rg-one", "web", max_ready_capacity=2, running=2)
    return server


def users(**passwords: str) -> str:
    """A ``basic_auth_users`` section with cost-4 bcrypt hashes (fast)."""
    lines = "".join(
        f"  {user}: {bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()}\n" for user, password in passwords.items()
    )
    return "basic_auth_users:\n" + lines


def write(path: Path, text: str) -> None:
    """Rewrite atomically with a later mtime, so the exporter's watcher always sees a change."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    staged = path.with_suffix(".staged")
    staged.write_text(text)
    mtime = max(staged.stat().st_mtime_ns, before + 1_000_000_000)
    os.utime(staged, ns=(mtime, mtime))
    os.replace(staged, path)


def counter(exporter: ExporterProcess, name: str) -> float:
    value = exporter.value(name)
    assert value is not None, f"{name} is not exposed"
    return value


def test_https_scrape_with_the_ca_and_configured_headers(one_pool: SimulatorServer, start_exporter, pki: TlsFiles, web_file: Path) -> None:
    write(web_file, TLS + "http_server_config:\n  headers:\n    X-Frame-Options: deny\n    X-Content-Type-Options: nosniff\n")
    exporter = start_exporter(
        pool_config(one_pool, ("rg-one", "web")), one_pool, f"--web.config.file={web_file}", scheme="https", verify=str(pki.ca_cert)
    )
    assert exporter.url.startswith("https://127.0.0.1:")
    exporter.wait_for(lambda: exporter.value("azure_standby_pool_up", pool="web") == 1, what="web up over https")
    response = exporter.get("/metrics")
    assert response.status_code == 200 and "azure_standby_pool_instances" in response.text
    for path in ("/metrics", "/", "/healthz", "/nope"):
        headers = exporter.get(path).headers
        assert (headers.get("X-Frame-Options"), headers.get("X-Content-Type-Options")) == ("deny", "nosniff"), path
    assert counter(exporter, "azure_standby_pool_web_tls_handshake_failures_total") == 0

    with pytest.raises(requests.exceptions.SSLError):  # not trusted without the CA
        exporter.get("/metrics", verify=True)
    with pytest.raises(requests.exceptions.ConnectionError):  # plain http on the TLS port
        requests.get(exporter.url.replace("https://", "http://") + "/metrics", timeout=5)
    exporter.wait_for(lambda: counter(exporter, "azure_standby_pool_web_tls_handshake_failures_total") == 2, timeout=5,
                      what="two failed handshakes counted")
    assert 'msg="TLS handshake failed"' in exporter.log_text()


def test_wrong_or_missing_password_is_401_and_counted_on_every_path(
    one_pool: SimulatorServer, start_exporter, web_file: Path
) -> None:
    write(web_file, users(alice="alice-secret"))
    exporter = start_exporter(pool_config(one_pool, ("rg-one", "web")), one_pool, f"--web.config.file={web_file}", auth=("alice", "alice-secret"))
    for path in ("/metrics", "/", "/healthz", "/readyz", "/nope"):
        missing = requests.get(exporter.url + path, timeout=5)
        assert missing.status_code == 401, path
        assert missing.headers["WWW-Authenticate"] == 'Basic realm="standby-pool-exporter"'
    wrong = exporter.get("/metrics", auth=("alice", "wrong"))
    assert wrong.status_code == 401 and "azure_standby_pool" not in wrong.text
    assert exporter.get("/metrics", auth=("mallory", "alice-secret")).status_code == 401
    assert exporter.post("/-/reload", auth=None).status_code == 401  # before the lifecycle check
    assert exporter.get("/healthz").status_code == 200
    assert counter(exporter, "azure_standby_pool_web_auth_failures_total") == 8
    assert "alice-secret" not in exporter.log_text()


def test_missing_or_untrusted_client_certificate_fails_the_handshake_and_is_counted(
    one_pool: SimulatorServer, start_exporter, pki: TlsFiles, web_file: Path
) -> None:
    write(web_file, MTLS)
    exporter = start_exporter(
        pool_config(one_pool, ("rg-one", "web")), one_pool, f"--web.config.file={web_file}",
        scheme="https", verify=str(pki.ca_cert), cert=pki.client_pair,
    )
    assert exporter.get("/metrics").status_code == 200
    with pytest.raises(requests.exceptions.ConnectionError):
        exporter.get("/metrics", cert=None)
    with pytest.raises(requests.exceptions.ConnectionError):
        exporter.get("/metrics", cert=pki.wrong_client_pair)
    exporter.wait_for(lambda: counter(exporter, "azure_standby_pool_web_tls_handshake_failures_total") == 2, timeout=5,
                      what="two failed handshakes counted")
    assert counter(exporter, "azure_standby_pool_web_auth_failures_total") == 0
    failures = [line for line in exporter.lines if 'msg="TLS handshake failed"' in line]
    assert len(failures) == 2 and all("level=debug" in line for line in failures)


def test_a_silent_client_does_not_block_others(one_pool: SimulatorServer, start_exporter, pki: TlsFiles, web_file: Path) -> None:
    write(web_file, TLS)
    exporter = start_exporter(pool_config(one_pool, ("rg-one", "web")), one_pool, f"--web.config.file={web_file}", scheme="https",
                              verify=str(pki.ca_cert))
    host, port = exporter.url.removeprefix("https://").rsplit(":", 1)
    silent = [socket.create_connection((host, int(port)), timeout=5) for _ in range(3)]  # connect, never say hello
    try:
        response = exporter.get("/healthz", timeout=2)
        assert response.status_code == 200
    finally:
        for sock in silent:
            sock.close()


def test_changing_the_web_config_file_takes_effect_without_restart(
    one_pool: SimulatorServer, start_exporter, pki: TlsFiles, web_file: Path
) -> None:
    write(web_file, TLS + users(alice="alice-secret"))
    exporter = start_exporter(
        pool_config(one_pool, ("rg-one", "web")), one_pool, f"--web.config.file={web_file}", scheme="https", verify=str(pki.ca_cert)
    )
    assert exporter.get("/healthz", auth=("bob", "bob-secret")).status_code == 401
    write(web_file, TLS + users(alice="alice-secret", bob="bob-secret"))
    exporter.wait_for(lambda: exporter.get("/healthz", auth=("bob", "bob-secret")).status_code == 200, timeout=5, what="bob accepted")
    assert exporter.get("/healthz", auth=("alice", "alice-secret")).status_code == 200
    assert any('msg="web configuration reloaded"' in line for line in exporter.lines)

    write(web_file, TLS + "basic_auth_users:\n  carol: plain-text-password\n")  # bad: the last good config stays

    def bob_still_in_and_problem_logged() -> bool:  # the watcher thread re-reads the file within a second
        assert exporter.get("/healthz", auth=("bob", "bob-secret")).status_code == 200
        return any('msg="invalid web configuration"' in line for line in exporter.lines)

    exporter.wait_for(bob_still_in_and_problem_logged, timeout=5, what="the problem logged")
    problem = next(line for line in exporter.lines if 'msg="invalid web configuration"' in line)
    assert "level=error" in problem and "basic_auth_users.carol" in problem and "plain-text-password" not in exporter.log_text()


def test_bad_web_config_at_start_exits_2_naming_the_key(tmp_path: Path, web_file: Path) -> None:
    write(web_file, TLS + "  client_auth_type: Sometimes\nhttp_server_config:\n  http3: true\n")
    for extra in ((), ("--check-config",)):
        result = run_cli("--config.file=config.example.yaml", f"--web.config.file={web_file}", "--web.listen-address=127.0.0.1:0", *extra)
        assert result.returncode == 2, result.stderr
        assert "invalid web configuration" in result.stderr
        assert "tls_server_config.client_auth_type" in result.stderr and "http_server_config.http3" in result.stderr
        assert "Traceback" not in result.stderr
    missing = run_cli("--config.file=config.example.yaml", f"--web.config.file={tmp_path / 'absent.yml'}", "--web.listen-address=127.0.0.1:0")
    assert missing.returncode == 2 and "absent.yml" in missing.stderr and "Traceback" not in missing.stderr


def test_check_config_accepts_a_good_web_config(web_file: Path) -> None:
    write(web_file, MTLS + users(alice="alice-secret"))
    result = run_cli("--check-config", "--config.file=config.example.yaml", f"--web.config.file={web_file}")
    assert result.returncode == 0, result.stderr
    assert "web configuration OK" in result.stdout
