"""`nurture status`: running daemons, due steps, the oldest overdue step and the lag."""

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from nurture.cli.context import state
from nurture.cli.output import out, print_json
from nurture.status import daemon_status
from nurture.store.db import open_store


def status(json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Show the running daemons (heartbeats), the due backlog and the lag."""
    now = datetime.now(UTC)
    with open_store(state.settings.database) as store, store.begin() as connection:
        report = daemon_status(connection, now)
    report["rate_limits"] = dict(state.settings.rate_limits)
    if json:
        print_json(report)
        return
    table = Table("worker", "host", "pid", "started (UTC)", "last beat", "steps run", "alive")
    for w in report["workers"]:
        table.add_row(
            w["worker"],
            w["hostname"],
            str(w["pid"]),
            f"{w['started_at']:%Y-%m-%d %H:%M:%S}",
            f"{(now - w['seen_at']).total_seconds():.0f}s ago",
            str(w["executed"]),
            "yes" if w["alive"] else "no",
        )
    out.print(
        table if report["workers"] else "no daemon has a heartbeat (start one with `nurture run`)"
    )
    oldest = report["oldest_due_at"]
    out.print(
        f"due now: {report['due']} step(s)"
        + (
            f", oldest due {oldest:%Y-%m-%d %H:%M:%S} UTC, lag {report['lag_seconds']:.1f}s"
            if oldest
            else ""
        )
    )
    counts = ", ".join(f"{k}: {v}" for k, v in sorted(report["enrollments"].items()))
    out.print(f"enrollments: {counts or 'none'}")
    if report["rate_limits"]:
        limits = ", ".join(f"{kind} {rate:g}/s" for kind, rate in report["rate_limits"].items())
        out.print(
            f"rate limits (shared by every daemon): {limits}; a burst waits in the store as lag"
        )
