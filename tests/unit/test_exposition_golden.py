"""Recorded ARM responses -> ArmClient -> Poller -> exposition, diffed with a golden file (node_exporter style).

``make golden`` rewrites the golden file after an intended change; review its diff like code.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.core.credentials import AccessToken

from exporter.arm import ArmClient, ReadBudget, RetryPolicy
from exporter.armstats import ArmStats
from exporter.config import load_settings
from exporter.exposition import render
from exporter.poller import Poller
from tests.conftest import promtool_check_metrics
from tests.support.scripted_http import Reply, ScriptedServer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ESTATE = FIXTURES / "arm" / "estate"
GOLDEN = FIXTURES / "exposition" / "estate.prom"
SUB = "401ef76a-dea9-45da-b19a-db3efced675b"
POOLS = [
    {"subscription_id": SUB, "resource_group": "myResourceGroup", "name": "myStandbyPool"},
    {"subscription_id": SUB, "resource_group": "myResourceGroup", "name": "myVmPool", "kind": "virtual_machine"},
]
NOW = 1_764_600_000.0


class StaticCredential:
    def get_token(self, *scopes: str, claims: str | None = None) -> AccessToken:
        return AccessToken("recorded-estate-token", int(NOW) + 3600)


@pytest.fixture
def estate() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        for body in ESTATE.rglob("*.json"):
            server.script("/" + body.relative_to(ESTATE).with_suffix("").as_posix(), Reply(body=body.read_bytes()))
        yield server


def poll_estate(server: ScriptedServer) -> bytes:
    settings = load_settings({"azure": {"resource_manager_endpoint": server.url}, "pools": POOLS})
    stats = ArmStats()
    client = ArmClient(server.url, StaticCredential(), "scope", observer=stats, budget=ReadBudget(0, 1), retry=RetryPolicy(attempts=1))
    poller = Poller(settings, client, stats, wall_clock=lambda: NOW, monotonic=lambda: 100.0)
    try:
        return render(poller.poll_once()).text
    finally:
        client.close()


def test_recorded_estate_renders_the_golden_exposition(estate: ScriptedServer) -> None:
    text = poll_estate(estate).decode()
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8"), "exposition drifted from the golden file: run `make golden` and review the diff"
    unanswered = [path for path in estate.paths() if not (ESTATE / (path.lstrip("/") + ".json")).is_file()]
    assert unanswered == [], f"the poll asked for responses the estate does not record: {unanswered}"


def test_golden_estate_passes_promtool(promtool: str) -> None:
    result = promtool_check_metrics(promtool, GOLDEN.read_text(encoding="utf-8"))
    assert result.returncode == 0, result.stdout + result.stderr
