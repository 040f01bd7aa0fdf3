"""A credential that does not work, said once and plainly.

azure-identity's ``DefaultAzureCredential`` logs a multi-line warning on every failed ``get_token``,
and each concurrent read would then log its own "pool poll failed kind=credential". Instead the token
cache logs one line per failed attempt (``explain``), holds the failure for the reads of the same cycle
(arm.TokenCache), and ``quiet_credential_noise`` drops the repeats (kept with ``--log.level=debug``).
"""

from __future__ import annotations

import logging
import re

# The ways to give DefaultAzureCredential something that works, in the order it tries them.
FIX = (
    "set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or AZURE_CLIENT_CERTIFICATE_PATH) for a service "
    "principal; in AKS use Workload ID (it sets AZURE_FEDERATED_TOKEN_FILE); on Azure assign a managed identity "
    "(AZURE_CLIENT_ID for a user-assigned one); or run `az login`"
)
DEMO = "--demo runs against the built-in simulator and needs no credential"
_SOURCE = re.compile(r"^\t(\w+): (.+)$", re.MULTILINE)
_MAX_REASON = 100


def explain(exc: BaseException) -> dict[str, str]:
    """Log fields for a failed token request: the sources tried (each with its reason), the fix, --demo."""
    text = str(exc)
    sources = []
    for name, reason in _SOURCE.findall(text):
        reason = reason.removeprefix(f"{name} ").removeprefix("authentication unavailable. ").strip()
        reason = reason.split(". ", 1)[0].rstrip(".")[:_MAX_REASON]
        sources.append(f"{name} ({reason})" if reason else name)
    lines = text.strip().splitlines()
    return {
        "tried": "; ".join(sources) or f"{type(exc).__name__}: {lines[0] if lines else ''}"[:300],
        "fix": FIX,
        "demo": DEMO,
    }


class _DropCredentialRepeats(logging.Filter):
    """Drops the per-pool and per-subscription failure lines whose cause, the credential, is logged once."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno == logging.WARNING and str(getattr(record, "kind", "")) == "credential")


def quiet_credential_noise(level: str) -> None:
    """Below debug: no azure-identity warnings, no per-pool repeats of a credential failure."""
    if level == "debug":
        return
    logging.getLogger("azure.identity").setLevel(logging.ERROR)
    poller = logging.getLogger("exporter.poller")
    if not any(isinstance(f, _DropCredentialRepeats) for f in poller.filters):
        poller.addFilter(_DropCredentialRepeats())
