"""exporter/credentials.py: one readable explanation of a credential failure, and the noise it replaces."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from exporter import credentials

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "credentials" / "default_credential_failed.txt"


def test_explain_names_every_source_tried_with_its_reason_on_one_line() -> None:
    fields = credentials.explain(RuntimeError(FIXTURE.read_text(encoding="utf-8")))
    tried = fields["tried"].split("; ")
    assert [t.split(" ", 1)[0] for t in tried] == [
        "EnvironmentCredential", "WorkloadIdentityCredential", "ManagedIdentityCredential", "SharedTokenCacheCredential",
        "VisualStudioCodeCredential", "AzureCliCredential", "AzurePowerShellCredential", "AzureDeveloperCliCredential",
        "BrokerCredential",
    ]
    assert "EnvironmentCredential (Environment variables are not fully configured)" in tried
    assert "AzureCliCredential (Azure CLI not found on path)" in tried
    assert all("\n" not in value and "\t" not in value for value in fields.values())
    for needle in ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE", "az login"):
        assert needle in fields["fix"]
    assert fields["demo"].startswith("--demo") and "no credential" in fields["demo"]


def test_explain_falls_back_to_the_first_line_of_another_error() -> None:
    fields = credentials.explain(ValueError("identity endpoint answered 500\nbody"))
    assert fields["tried"] == "ValueError: identity endpoint answered 500"


@pytest.fixture
def restore_loggers():
    identity, poller = logging.getLogger("azure.identity"), logging.getLogger("exporter.poller")
    saved = identity.level, list(poller.filters)
    yield identity, poller
    identity.setLevel(saved[0])
    poller.filters[:] = saved[1]


def test_quiet_below_debug_drops_identity_warnings_and_per_pool_credential_repeats(restore_loggers) -> None:
    identity, poller = restore_loggers
    credentials.quiet_credential_noise("info")
    credentials.quiet_credential_noise("info")  # main() runs again (tests): still one filter
    assert sum(isinstance(f, credentials._DropCredentialRepeats) for f in poller.filters) == 1
    assert not logging.getLogger("azure.identity._credentials.chained").isEnabledFor(logging.WARNING)

    def record(kind: str, level: int = logging.WARNING) -> logging.LogRecord:
        rec = logging.LogRecord("exporter.poller", level, __file__, 1, "pool poll failed", None, None)
        rec.kind = kind
        return rec

    assert poller.filter(record("credential")) is False
    assert poller.filter(record("forbidden")) is True  # every other failure is still logged per pool
    assert poller.filter(record("credential", logging.ERROR)) is True


def test_debug_keeps_everything(restore_loggers) -> None:
    identity, poller = restore_loggers
    before = list(poller.filters), identity.level
    credentials.quiet_credential_noise("debug")
    assert (list(poller.filters), identity.level) == before
