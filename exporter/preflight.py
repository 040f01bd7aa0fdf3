"""``--check-config --check-access``: before the first real run, does the identity get a token, and may
it make the reads the exporter makes? One read per configured subscription and pool kind; per
subscription, OK or the exact role action that is missing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .arm import ArmClient, ArmError, ErrorKind, RetryPolicy, TokenCredential
from .config import Settings
from .credentials import explain
from .model import PoolKind
from .resources import missing_role_hint, pool_collection_path

EXIT_OK = 0
EXIT_FAILED = 2


@dataclass(frozen=True)
class Probe:
    """The read that stands for one (subscription, pool kind): the pool list the poller reads."""

    subscription_id: str
    kind: PoolKind
    scope: str  # "resource group <name>" or "subscription"
    path: str


def probes(settings: Settings) -> list[Probe]:
    """One read per configured subscription and pool kind, at the scope the exporter reads it: a
    configured pool's resource group (a role assigned there suffices), or, for discovery, the subscription."""
    found: dict[tuple[str, str], Probe] = {}
    for ref in settings.pools:
        key = (ref.subscription_id.lower(), ref.kind)
        if key not in found:
            found[key] = Probe(ref.subscription_id, ref.kind, f"resource group {ref.resource_group}",
                               pool_collection_path(ref.subscription_id, ref.resource_group, ref.kind))
    if settings.discovery is not None:
        for sub in settings.discovery.subscriptions:
            for kind in settings.discovery.kinds:
                found.setdefault((sub.lower(), kind), Probe(sub, kind, "subscription", pool_collection_path(sub, None, kind)))
    return list(found.values())


def check_access(settings: Settings, credential: TokenCredential, out: Callable[[str], None] = print) -> int:
    """Print a token line, then one line per subscription; EXIT_OK when every read succeeded."""
    client = ArmClient(settings.azure.resource_manager_endpoint, credential, settings.azure.token_scope,
                       timeout=settings.polling.timeout, retry=RetryPolicy(attempts=2))
    try:
        try:
            credential.get_token(settings.azure.token_scope)
        except Exception as exc:  # azure-identity raises several unrelated types
            fields = explain(exc)
            out(f"token: FAILED, no working Azure credential. Tried: {fields['tried']}. To fix: {fields['fix']}. "
                f"({fields['demo']})")
            return EXIT_FAILED
        out(f"token: OK ({settings.azure.token_scope})")
        results: dict[str, list[str]] = {}
        for probe in probes(settings):
            results.setdefault(probe.subscription_id, []).append(_read(client, settings, probe))
        for sub, problems in results.items():
            failed = [p for p in problems if p]
            out(f"subscription {sub}: " + ("OK" if not failed else "FAILED: " + "; ".join(failed)))
        return EXIT_OK if results and not any(p for problems in results.values() for p in problems) else EXIT_FAILED
    finally:
        client.close()


def _read(client: ArmClient, settings: Settings, probe: Probe) -> str:
    """'' when the read succeeded, else what is wrong and what to do."""
    try:
        client.list_all(probe.path, settings.azure.api_versions["standby_pool"], operation="pool_list",
                    subscription_id=probe.subscription_id)
    except ArmError as error:
        where = f"{probe.kind} pools ({probe.scope})"
        if error.kind == ErrorKind.FORBIDDEN:
            return f"{where}: forbidden, {missing_role_hint('pool_list', probe.kind)}"
        return f"{where}: {error.describe()}"
    return ""
