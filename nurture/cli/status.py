"""`nurture status`: daemons, due steps, the oldest overdue step, the lag, the sends to settle."""

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.table import Table

from nurture.cli.context import state
from nurture.cli.output import out, plural, print_json
from nurture.spec.durations import format_duration


def status(
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    every: Annotated[
        bool, typer.Option("--all", help="Also the daemons dead for more than an hour.")
    ] = False,
) -> None:
    """Show the daemons (heartbeats), the due backlog, the lag and the sends to settle.

    \b
    Examples:
      nurture status
      nurture status --all --json
    """
    from nurture.insights.status import daemon_status  # SQLAlchemy: not for `status --help`

    now = datetime.now(UTC)
    with state.store() as store, store.begin() as connection:
        report = daemon_status(connection, now, every=every)
    report["rate_limits"] = dict(state.settings.rate_limits)
    if json:
        print_json(report)
        return
    table = Table("worker", "host", "pid", "started (UTC)", "last beat", "steps run", "state")
    for w in report["workers"]:
        table.add_row(
            w["worker"],
            w["hostname"],
            str(w["pid"]),
            f"{w['started_at']:%Y-%m-%d %H:%M:%S}",
            f"{format_duration(timedelta(seconds=round(w['silent_seconds'])))} ago",
            str(w["executed"]),
            "alive" if w["alive"] else "dead",
        )
    out.print(
        table if report["workers"] else "no daemon has a heartbeat (start one with `nurture run`)"
    )
    if report["hidden_workers"]:
        hidden = plural(report["hidden_workers"], "daemon")
        out.print(f"{hidden} dead for more than an hour not listed (`nurture status --all`)")
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
    _settle(report["settle"])
    for canary in report["canaries"]:
        out.print(
            f"canary in progress: {canary['sequence']} v{canary['version']} gets "
            f"{canary['share']:.0%} of new enrollments (the others stay on "
            f"v{canary['current_version']}); `nurture apply` completes the rollout",
            highlight=False,
        )


def _settle(waiting: dict) -> None:
    if not waiting["waiting"]:
        return
    per = ", ".join(f"{name}: {count}" for name, count in waiting["sequences"].items())
    out.print(
        f"sends waiting to be settled: {waiting['waiting']} ({per}); decide with "
        f"`{waiting['hint']}` (it shows a plan first)"
    )
