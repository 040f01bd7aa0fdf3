"""grafana/provisioning/ and deploy/compose/: a Grafana container loads the datasource and the dashboard
at start, and the compose stack's Prometheus configuration is valid with the alert rules."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import yaml

from .conftest import REPO

PROVISIONING = REPO / "grafana" / "provisioning"
COMPOSE = REPO / "deploy" / "compose"


def test_datasource_provisioning() -> None:
    doc = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yaml").read_text(encoding="utf-8"))
    assert doc["apiVersion"] == 1
    [ds] = doc["datasources"]
    assert ds["type"] == "prometheus" and ds["access"] == "proxy" and ds["isDefault"] is True
    assert ds["url"] == "${PROMETHEUS_URL}"


def test_dashboard_provider_and_compose_mount_agree() -> None:
    doc = yaml.safe_load((PROVISIONING / "dashboards" / "azure-standby-pool-exporter.yaml").read_text(encoding="utf-8"))
    assert doc["apiVersion"] == 1
    [provider] = doc["providers"]
    assert provider["type"] == "file"
    path = provider["options"]["path"]

    compose = yaml.safe_load((COMPOSE / "compose.yaml").read_text(encoding="utf-8"))
    grafana = compose["services"]["grafana"]
    mounts = dict(volume.rsplit(":", 1)[0].split(":", 1) for volume in grafana["volumes"])
    assert mounts["../../grafana/provisioning"] == "/etc/grafana/provisioning"
    assert mounts["../../grafana/standby-pools.json"] == f"{path}/standby-pools.json"
    assert grafana["environment"]["PROMETHEUS_URL"] == "http://prometheus:9090"
    for host_path in mounts:
        assert (COMPOSE / host_path).resolve().exists(), host_path

    readme = (REPO / "grafana" / "README.md").read_text(encoding="utf-8")
    assert f'standby-pools.json:{path}/standby-pools.json:ro' in readme
    assert 'grafana/provisioning:/etc/grafana/provisioning:ro' in readme


def test_compose_prometheus_config_is_valid_with_the_rules(promtool: str, tmp_path: Path) -> None:
    """promtool check config also loads and checks the rule files the configuration names."""
    compose = yaml.safe_load((COMPOSE / "compose.yaml").read_text(encoding="utf-8"))
    prometheus = compose["services"]["prometheus"]
    for volume in prometheus["volumes"]:
        host, container = volume.rsplit(":", 1)[0].split(":", 1)
        assert container.startswith("/etc/prometheus/")
        shutil.copy(COMPOSE / host, tmp_path / Path(container).name)
    result = subprocess.run([promtool, "check", "config", str(tmp_path / "prometheus.yml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    rules = sum(len(g["rules"]) for g in yaml.safe_load((REPO / "prometheus" / "alerts.yaml").read_text())["groups"])
    assert f"SUCCESS: {rules} rules found" in result.stdout + result.stderr
    config = yaml.safe_load((COMPOSE / "prometheus.yml").read_text(encoding="utf-8"))
    assert config["scrape_configs"][0]["job_name"] == "azure-standby-pool-exporter"
    assert compose["services"]["exporter"]["command"][0] == "--demo"


def test_compose_healthchecks_gate_the_stack_and_the_exporter_check_works(tmp_path: Path) -> None:
    """The exporter's healthcheck, run as compose runs it, passes against a live exporter (--demo) and
    fails with none listening; Prometheus waits for a healthy exporter, Grafana for a healthy Prometheus."""
    services = yaml.safe_load((COMPOSE / "compose.yaml").read_text(encoding="utf-8"))["services"]
    assert services["prometheus"]["depends_on"] == {"exporter": {"condition": "service_healthy"}}
    assert services["grafana"]["depends_on"] == {"prometheus": {"condition": "service_healthy"}}
    assert "/-/ready" in " ".join(services["prometheus"]["healthcheck"]["test"])
    check = services["exporter"]["healthcheck"]["test"]
    assert check[:3] == ["CMD", "python", "-c"]
    listen = next(arg for arg in services["exporter"]["command"] if arg.startswith("--web.listen-address="))
    url = re.search(r"'(http://127\.0\.0\.1:(\d+)/healthz)'", check[3])
    assert url and listen.endswith(f":{url.group(2)}"), "the healthcheck must ask the port the exporter listens on"

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code = check[3].replace(f":{url.group(2)}/", f":{port}/")

    def healthcheck() -> int:
        return subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30).returncode

    assert healthcheck() != 0, "nothing listens yet"
    exporter = subprocess.Popen([sys.executable, "-m", "exporter", "--demo", f"--web.listen-address=127.0.0.1:{port}"],
                                cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while healthcheck() != 0:
            assert exporter.poll() is None and time.monotonic() < deadline, "the exporter never became healthy"
            time.sleep(0.2)
    finally:
        exporter.terminate()
        exporter.wait(10)
