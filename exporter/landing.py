"""The ``/`` status page's first paint, rendered from the status document; every value HTML-escaped.

``/static/status.js`` then refreshes it from ``/status.json`` and draws the same markup, so a browser
without script still sees a complete page. No inline script or style: the page works under
``Content-Security-Policy: default-src 'self'`` (:data:`CSP`, sent with it).
"""

from __future__ import annotations

from html import escape
from typing import Any

CSP = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
KIND_NAMES = {"container_group": "container groups", "virtual_machine": "virtual machines"}
BAR_WIDTH, SPARK_WIDTH, SPARK_HEIGHT = 100, 60, 16


def landing_page(document: dict[str, Any]) -> str:
    """The whole page for one status document (see docs/status.md)."""
    metrics = escape(document["telemetry_path"])
    pools = "\n".join(_pool(pool, _several_subscriptions(document)) for pool in document["pools"])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Standby pools - Azure Standby Pool Exporter</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/status.css">
<script src="/static/status.js" defer></script>
</head><body>
<header>
<h1>Azure standby pools</h1>
<nav><a href="{metrics}">Metrics</a> <a href="/status.json">Status JSON</a> <a href="/healthz">Health</a> <a href="/readyz">Readiness</a></nav>
<dl id="facts">{_facts(document)}</dl>
</header>
<main>
<div class="toolbar"><p id="summary">{escape(summary_text(document))}</p>
<label>Show <select id="group">{_group_options(document)}</select></label></div>
<ul id="pools" data-interval="{escape(str(document["interval_seconds"]))}">
{pools}
</ul>
</main>
</body></html>
"""


def summary_text(document: dict[str, Any]) -> str:
    counts = document["summary"]
    parts = [f"{counts[name]} {name}" for name in ("depleted", "low", "unknown", "pending", "fine") if counts[name]]
    return f"{len(document['pools'])} pools: " + ", ".join(parts) if parts else "No pools polled by this exporter."


def format_age(seconds: float | None) -> str:
    """``12 s ago``, ``3 min ago``, ``2 h ago``, ``4 d ago``; ``never``."""
    if seconds is None:
        return "never"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return f"{int(seconds)} s ago"


def _several_subscriptions(document: dict[str, Any]) -> bool:
    return len({pool["subscription_id"].lower() for pool in document["pools"]}) > 1


def _fact(name: str, value: str, key: str) -> str:
    return f'<div><dt>{escape(name)}</dt><dd data-fact="{escape(key)}">{escape(value)}</dd></div>'


def _facts(document: dict[str, Any]) -> str:
    reload = document["reload"]
    if reload is None or not reload["supported"]:
        reload_text = "not supported (--demo)" if reload is not None else "n/a"
    else:
        reload_text = "ok" if reload["successful"] else "FAILED: running the previous configuration"
    duration = document["poll_cycle_duration_seconds"]
    remaining = document["arm_remaining_reads"]
    shard = document["shard"]
    return "".join((
        _fact("Version", document["version"], "version"),
        _fact("Shard", f"{shard['index']}/{shard['count']}", "shard"),
        _fact("Config reload", reload_text, "reload"),
        _fact("Discovered pools", str(document["discovered_pools"]), "discovered"),
        _fact("Poll cycle", "not yet" if duration is None else f"{duration:.2f} s every {document['interval_seconds']:g} s", "cycle"),
        _fact("Cycles", str(document["poll_cycles"]), "cycles"),
        _fact("ARM reads left", "unknown" if remaining is None else str(remaining), "remaining"),
    ))


def group_key(pool: dict[str, Any]) -> str:
    return f"{pool['subscription_id'].lower()}/{pool['resource_group'].lower()}"


def _group_options(document: dict[str, Any]) -> str:
    options = ['<option value="">all resource groups</option>']
    subscriptions: dict[str, dict[str, str]] = {}
    for pool in document["pools"]:
        subscriptions.setdefault(pool["subscription_id"].lower(), {})[group_key(pool)] = pool["resource_group"]
    for subscription in sorted(subscriptions):
        if len(subscriptions) > 1:
            options.append(f'<option value="{escape(subscription)}/">subscription {escape(subscription)}</option>')
        for key, name in sorted(subscriptions[subscription].items()):
            options.append(f'<option value="{escape(key)}">{escape(name)}</option>')
    return "".join(options)


def _pool(pool: dict[str, Any], several_subscriptions: bool) -> str:
    condition = pool["condition"]
    ready, maximum = pool["ready"], pool["max_ready_capacity"]
    where = escape(pool["resource_group"])
    if several_subscriptions:
        where += f" ({escape(pool['subscription_id'][:8])})"
    lines = [
        f'<li class="pool {escape(condition)}" data-pool="{escape(pool["name"])}" data-group="{escape(group_key(pool))}">',
        f'<div class="title"><span class="badge">{escape(condition)}</span> <strong class="name">{escape(pool["name"])}</strong> '
        f'<span class="kind">{escape(KIND_NAMES.get(pool["kind"], pool["kind"]))}</span> '
        f'<span class="where" title="{escape(pool["subscription_id"])}">{where}</span></div>',
        f'<div class="capacity">{_bar(ready, maximum)}<span class="ready">{escape(ready_text(ready, maximum))}</span></div>',
        f'<p class="states">{escape(states_text(pool))}</p>',
        f'<p class="health">{escape(health_text(pool))}</p>',
    ]
    if pool["forecast"] is not None:
        lines.append(f'<p class="forecast">forecast {_sparkline(pool["forecast"]["instances_requested"])}</p>')
    lines.append(f'<p class="age">last success <span class="age-value">{escape(format_age(pool["last_success_age_seconds"]))}</span></p>')
    if pool["errors"]:
        items = "".join(f'<li><b>{escape(error["part"])}</b>: {escape(error["error"])}</li>' for error in pool["errors"])
        lines.append(f'<ul class="errors">{items}</ul>')
    lines.append("</li>")
    return "\n".join(lines)


def ready_text(ready: int | None, maximum: int | None) -> str:
    return f"{'?' if ready is None else ready} / {'?' if maximum is None else maximum} ready"


def states_text(pool: dict[str, Any]) -> str:
    """The instance states with a count (zeros left out)."""
    if not pool["states"]:
        return "instance counts unknown"
    return " · ".join(f"{state} {count}" for state, count in pool["states"].items() if count) or "no instances"


def health_text(pool: dict[str, Any]) -> str:
    members = pool["members"]
    parts = [
        f"health {pool['health_state'] or 'unknown'}",
        f"provisioning {pool['provisioning_state'] or 'unknown'}",
        "members unknown" if members is None else f"members {members['ready']} of {members['total']} ready",
    ]
    if pool["virtual_machine_state"]:
        parts.append(f"keeps VMs {pool['virtual_machine_state']}")
    if pool["member_read_failures"]:
        parts.append(f"{pool['member_read_failures']} member reads failing")
    return " · ".join(parts)


def _bar(ready: int | None, maximum: int | None) -> str:
    filled = 0.0 if not ready or not maximum else min(1.0, ready / maximum) * BAR_WIDTH
    return (f'<svg class="bar" viewBox="0 0 {BAR_WIDTH} 8" preserveAspectRatio="none" aria-hidden="true">'
            f'<rect class="track" width="{BAR_WIDTH}" height="8"></rect><rect class="fill" width="{filled:.1f}" height="8"></rect></svg>')


def sparkline_points(values: list[float]) -> str:
    """SVG polyline points for ``values`` scaled into the sparkline box (0 at the bottom)."""
    top = max([*values, 1.0])
    step = SPARK_WIDTH / max(1, len(values) - 1)
    return " ".join(f"{i * step:.1f},{SPARK_HEIGHT - 1 - value / top * (SPARK_HEIGHT - 2):.1f}" for i, value in enumerate(values))


def _sparkline(values: list[float]) -> str:
    label = ", ".join(f"{value:g}" for value in values)
    return (f'<svg class="spark" viewBox="0 0 {SPARK_WIDTH} {SPARK_HEIGHT}" role="img" aria-label="{escape(label)}">'
            f'<title>{escape(label)}</title><polyline points="{sparkline_points(values)}"></polyline></svg>'
            f' <span class="spark-range">{escape(f"{min(values):g}-{max(values):g}")}</span>')
