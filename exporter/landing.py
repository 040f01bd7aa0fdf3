"""The ``/`` landing page: version, links, and every pool with its last poll outcome (HTML-escaped)."""

from __future__ import annotations

import html
from datetime import UTC, datetime

from . import __version__
from .snapshot import PoolStatus, Snapshot


def landing_page(snapshot: Snapshot, telemetry_path: str) -> str:
    rows = "\n".join(
        "<tr><td>{sub}</td><td>{rg}</td><td>{pool}</td><td>{up}</td><td>{resource}</td><td>{members}</td><td>{success}</td>"
        "<td>{error}</td></tr>".format(
            sub=html.escape(status.ref.subscription_id),
            rg=html.escape(status.ref.resource_group),
            pool=html.escape(status.ref.name),
            up=("yes" if status.up else "no") if status.polled else "not polled yet",
            resource=("fresh" if status.resource_up else "stale or missing") if status.polled else "",
            members=_members_cell(status) if status.polled else "",
            success=_format_time(status.last_success),
            error=html.escape(status.last_error or ""),
        )
        for status in snapshot.pools
    )
    path = html.escape(telemetry_path)
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Azure Standby Pool Exporter</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}</style>
</head><body>
<h1>Azure Standby Pool Exporter</h1>
<p>Version {html.escape(__version__)}. Values are cached and refreshed every {snapshot.interval:g}s.</p>
<p><a href="{path}">Metrics</a> &middot; <a href="/healthz">Health</a> &middot; <a href="/readyz">Readiness</a></p>
<table><thead><tr><th>Subscription</th><th>Resource group</th><th>Pool</th><th>Runtime view</th><th>Pool resource</th><th>Members</th>
<th>Last success</th><th>Failed parts (why)</th></tr></thead>
<tbody>
{rows}
</tbody></table>
</body></html>
"""


def _members_cell(status: PoolStatus) -> str:
    listed = "list read" if status.members_up else "list failed"
    return f"{listed}, {status.member_read_failures} failing" if status.member_read_failures else listed


def _format_time(timestamp: float | None) -> str:
    if timestamp is None:
        return "never"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
