"""The first run against a subscription (issue 13, part 4), through the real exporter process:
``--check-config --check-access`` against the simulator (a token from its managed identity endpoint,
403 for a subscription or a pool kind), and a configuration with no working credential at all."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from exporter.simulator import Fault, Simulator, SimulatorServer

from .conftest import REPO, SUB

OTHER = "11111111-1111-1111-1111-111111111111"
ROLE_HINT = "assign the role in deploy/azure/role.json"


def _env(server: SimulatorServer | None) -> dict[str, str]:
    """The environment without any Azure credential; with the simulator's managed identity if given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "IDENTITY_", "MSI_"))}
    env["PYTHONUNBUFFERED"] = "1"
    if server is not None:
        env.update(IDENTITY_ENDPOINT=server.identity_endpoint, IDENTITY_HEADER=server.identity_header)
    return env


def _config(tmp_path: Path, url: str, pools: list[dict[str, str]], **polling: Any) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({
        "azure": {"resource_manager_endpoint": url},
        "polling": {"interval": "1s", "timeout": "2s", **polling},
        "pools": pools,
    }))
    return path


def _check_access(config: Path, server: SimulatorServer | None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "exporter", "--check-config", "--check-access", f"--config.file={config}"],
                          cwd=REPO, env=_env(server), capture_output=True, text=True, timeout=60)


def _estate(sim: Simulator) -> list[dict[str, str]]:
    sim.add_container_group_pool(SUB, "rg-web", "web", max_ready_capacity=2)
    sim.add_container_group_pool(SUB, "rg-web", "api", max_ready_capacity=2)  # same subscription and kind: no second read
    sim.add_virtual_machine_pool(SUB, "rg-vm", "vms", max_ready_capacity=2)
    sim.add_container_group_pool(OTHER, "rg-other", "batch", max_ready_capacity=2)
    return [
        {"subscription_id": SUB, "resource_group": "rg-web", "name": "web"},
        {"subscription_id": SUB, "resource_group": "rg-web", "name": "api"},
        {"subscription_id": SUB, "resource_group": "rg-vm", "name": "vms", "kind": "virtual_machine"},
        {"subscription_id": OTHER, "resource_group": "rg-other", "name": "batch"},
    ]


def test_check_access_prints_ok_or_the_missing_role_action_per_subscription(simulator, tmp_path: Path) -> None:
    sim, server = simulator
    config = _config(tmp_path, server.url, _estate(sim))

    ok = _check_access(config, server)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"subscription {SUB}: OK" in ok.stdout and f"subscription {OTHER}: OK" in ok.stdout
    assert ok.stdout.startswith("configuration OK: 4 pool(s)\ntoken: OK")
    reads = [(r.subscription_id, r.operation, r.path.lower()) for r in sim.requests if r.operation != "token"]
    # One read per configured subscription and pool kind, the pool list of a configured pool's resource group.
    assert sorted(reads) == sorted([
        (SUB, "pool_list", f"/subscriptions/{SUB}/resourcegroups/rg-web/providers/microsoft.standbypool/standbycontainergrouppools"),
        (SUB, "pool_list", f"/subscriptions/{SUB}/resourcegroups/rg-vm/providers/microsoft.standbypool/standbyvirtualmachinepools"),
        (OTHER, "pool_list", f"/subscriptions/{OTHER}/resourcegroups/rg-other/providers/microsoft.standbypool/standbycontainergrouppools"),
    ])

    # ARM answers 403 for one whole subscription, and for the virtual machine pools of the other.
    sim.faults.add(Fault(match=f"/subscriptions/{OTHER}/", status=403))
    sim.faults.add(Fault(match="/standbyvirtualmachinepools", status=403))
    denied = _check_access(config, server)
    assert denied.returncode == 2, denied.stdout + denied.stderr
    lines = {line.split(":", 1)[0]: line for line in denied.stdout.splitlines()}
    other = lines[f"subscription {OTHER}"]
    assert "FAILED" in other and "container_group pools (resource group rg-other): forbidden" in other
    assert "lacks Microsoft.StandbyPool/standbyContainerGroupPools/read" in other and ROLE_HINT in other
    mine = lines[f"subscription {SUB}"]
    assert "lacks Microsoft.StandbyPool/standbyVirtualMachinePools/read" in mine
    assert "standbyContainerGroupPools" not in mine, "the container group pools of this subscription are readable"
    assert "Traceback" not in denied.stderr and server.identity_header not in denied.stdout + denied.stderr


def test_check_access_without_a_credential_says_what_was_tried_and_exits_2(simulator, tmp_path: Path) -> None:
    sim, server = simulator
    config = _config(tmp_path, server.url, _estate(sim))
    result = _check_access(config, None)
    assert result.returncode == 2, result.stdout + result.stderr
    [line] = [line for line in result.stdout.splitlines() if line.startswith("token:")]
    assert line.startswith("token: FAILED, no working Azure credential")
    for needle in ("EnvironmentCredential", "ManagedIdentityCredential", "AZURE_CLIENT_SECRET", "az login", "--demo"):
        assert needle in line, needle
    assert "subscription" not in result.stdout, "no read is attempted without a token"
    assert [r for r in sim.requests if r.operation != "token"] == []


def test_no_credential_logs_one_clear_line_per_cycle_instead_of_identity_warnings(simulator, tmp_path: Path) -> None:
    sim, server = simulator
    config = _config(tmp_path, server.url, _estate(sim))
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "exporter", f"--config.file={config}", "--web.listen-address=127.0.0.1:0", "--log.level=info"],
        cwd=REPO, env=_env(None), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stderr.readline, "")), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 45
        while sum("no working Azure credential" in line for line in lines) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        process.terminate()
        process.wait(10)
        reader.join(5)
    elapsed = time.monotonic() - started
    text = "".join(lines)
    credential_lines = [line for line in lines if "no working Azure credential" in line]
    assert len(credential_lines) >= 3, text[-4000:]
    # At most one per cycle (interval 1s): four pools polled concurrently would otherwise give four each.
    assert len(credential_lines) <= elapsed / 1.0 + 2, f"{len(credential_lines)} lines in {elapsed:.1f}s"
    for line in credential_lines:
        assert line.startswith("ts=") and "level=warn" in line and line.count("\n") == 1
        tried = re.search(r'tried="([^"]*)"', line)
        assert tried and "EnvironmentCredential (" in tried.group(1) and "ManagedIdentityCredential" in tried.group(1)
        assert "AZURE_CLIENT_SECRET" in line and "az login" in line and "--demo" in line
    # No azure-identity warnings (multi-line, one per concurrent read) and no per-pool repeats.
    assert "Attempted credentials" not in text and "DefaultAzureCredential failed" not in text
    assert "pool poll failed" not in text
    assert all(line.startswith("ts=") for line in lines), [line for line in lines if not line.startswith("ts=")][:3]
