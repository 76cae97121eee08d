"""`nurture stats`, `nurture logs`, `nurture report`: how sequences perform, what ran, as HTML."""

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from nurture.cli import figures
from nurture.cli.context import state
from nurture.cli.options import JSON
from nurture.cli.output import json_text, note, out, print_json, print_result
from nurture.errors import NurtureError

if TYPE_CHECKING:  # the figures' queries load SQLAlchemy: imported where a command runs
    from nurture.insights import logs as log_service
    from nurture.rules.periods import Window

Since = Annotated[
    str | None, typer.Option("--since", help="A duration back from now (7d, 12h) or a date.")
]
Until = Annotated[str | None, typer.Option("--until", help="A duration back from now or a date.")]
Funnel = Annotated[str | None, typer.Option("--funnel", help="Only leads of this funnel.")]


def _window(since: str | None, until: str | None) -> "Window":
    from nurture.rules.periods import Window

    return Window.parse(since, until, datetime.now(UTC))


def stats(
    sequence: Annotated[
        str | None, typer.Argument(help="A sequence: its steps, drop-off and reasons.")
    ] = None,
    funnel: Funnel = None,
    since: Since = None,
    until: Until = None,
    by: Annotated[
        Literal["version", "channel", "day", "variant"] | None,
        typer.Option(
            "--by",
            help="version: versions side by side; channel: messages per channel; day: per "
            "channel and day; variant: a SEQUENCE's A/B tests, with intervals and p-values.",
        ),
    ] = None,
    json: JSON = False,
    csv: Annotated[bool, typer.Option("--csv", help="Print the main table as CSV.")] = False,
) -> None:
    """How sequences perform: outcomes, conversion, completion time; per step with SEQUENCE.

    \b
    Examples:
      nurture stats --since 30d
      nurture stats 'Warm Lead Welcome' --by version
      nurture stats 'Warm Lead Welcome' --by variant
      nurture stats --json
    """
    from nurture.insights.report import StatsRequest, gather

    if json and csv:
        raise NurtureError("--json or --csv: one output at a time")
    min_sample = state.settings.experiments.min_sample
    request = StatsRequest(_window(since, until), sequence, funnel, by, min_sample)
    with state.session() as session:
        data = gather(session, request)
    if json:
        print_json(data)
    elif csv:
        figures.write_csv(figures.main_rows(data))
    elif sequence is not None:
        figures.one_sequence(data)
    else:
        figures.overview(data)


def logs(
    sequence: Annotated[str | None, typer.Option("--sequence", help="Name or slug.")] = None,
    step: Annotated[str | None, typer.Option("--step", help="A step id.")] = None,
    lead: Annotated[str | None, typer.Option("--lead", help="Id, external id or email.")] = None,
    funnel: Funnel = None,
    status: Annotated[
        str | None, typer.Option("--status", help="failed, skipped, unknown, sent, retry, ...")
    ] = None,
    since: Since = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many entries.")] = 50,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new entries (Ctrl-C stops).")
    ] = False,
    events: Annotated[
        bool,
        typer.Option(
            "--events",
            help="The engagement events instead (deliveries, reads, clicks, opens, replies, "
            "bounces, conversions); --status picks a kind.",
        ),
    ] = False,
    json: JSON = False,
) -> None:
    """The execution log, newest first: status, attempt, lag and error of every step run.

    \b
    Examples:
      nurture logs --status failed --since 1d
      nurture logs --lead ana@example.com --follow
      nurture logs --events --status clicked --sequence welcome
    """
    if events:
        _events(sequence, step, lead, funnel, status, since, limit, json)
        return
    from nurture.insights import logs as log_service

    with state.session() as session:
        filters = _filters(session, sequence, step, lead, funnel, status, since)
        entries = log_service.recent(session, filters, limit)
    if not follow:
        if json:
            print_json(entries)
        elif out.width >= WIDE or not entries:
            out.print(_log_table(entries))
        else:  # a table of nine columns wraps every cell in a narrow terminal or a pipe
            for entry in entries:
                out.print(_log_lines(entry), highlight=False)
        return
    for entry in reversed(entries):
        _print_entry(entry, json)
    _follow(filters, entries[0]["id"] if entries else 0, json)


def _events(
    sequence: str | None,
    step: str | None,
    lead: str | None,
    funnel: str | None,
    kind: str | None,
    since: str | None,
    limit: int,
    json: bool,
) -> None:
    from nurture.insights import engagement_log

    with state.session() as session:
        filters = _filters(session, sequence, step, lead, funnel, None, since)
        filters = replace(filters, status=engagement_log.check_kind(kind))
        found = engagement_log.recent_events(session, filters, limit)
    if json:
        print_json(found)
        return
    if not found:
        out.print("no engagement events match")
        return
    shown = Table(box=box.SIMPLE_HEAD)
    for name in ("at (UTC)", "event", "lead", "sequence", "step", "link"):
        shown.add_column(name, no_wrap=name != "link", overflow="fold")
    for row in found:
        cells = (f"{row['at']:%Y-%m-%d %H:%M:%S}", row["kind"], row["lead"], row["sequence"] or "-")
        shown.add_row(*map(escape, cells), escape(row["step_id"] or "-"), escape(row["link"] or ""))
    out.print(shown)


def _filters(
    session: Any,
    sequence: str | None,
    step: str | None,
    lead: str | None,
    funnel: str | None,
    status: str | None,
    since: str | None,
) -> "log_service.LogFilter":
    from nurture.insights import logs as log_service
    from nurture.leads.records import find_funnel, find_lead
    from nurture.project import sequences
    from nurture.rules.periods import parse_when

    return log_service.LogFilter(
        sequence_id=sequences.find(session, sequence).id if sequence else None,
        step_id=step,
        lead_id=find_lead(session, lead).id if lead else None,
        funnel_id=find_funnel(session, funnel).id if funnel else None,
        status=log_service.check_status(status),
        since=parse_when(since, datetime.now(UTC)),
    )


def _follow(filters: "log_service.LogFilter", after: int, json: bool) -> None:
    from nurture.insights import logs as log_service

    note("following the log (Ctrl-C stops)")
    with state.store() as store:
        try:
            for batch in log_service.follow(store, filters, after):
                for entry in batch:
                    _print_entry(entry, json)
        except KeyboardInterrupt:
            return


LOG_COLUMNS = ("id", "started (UTC)", "lead", "sequence", "step", "attempt", "status", "lag")


def _log_cells(entry: dict[str, Any]) -> list[str]:
    started = entry["started_at"]
    return [
        str(entry["id"]),
        f"{started:%Y-%m-%d %H:%M:%S}" if started else "-",
        escape(entry["lead"]),
        escape(entry["sequence"]),
        escape(entry["step_id"] + (f" [{entry['variant']}]" if entry.get("variant") else "")),
        str(entry["attempt"]),
        entry["status"],
        figures.cell("lag_seconds", entry["lag_seconds"]),
    ]


def _log_table(entries: list[dict[str, Any]]) -> Table | str:
    if not entries:
        return "no executions match"
    shown = Table(box=box.SIMPLE_HEAD)
    for name in LOG_COLUMNS:
        shown.add_column(name, no_wrap=name in ("id", "started (UTC)", "attempt", "status"))
    shown.add_column("error", overflow="fold")
    for entry in entries:
        shown.add_row(*_log_cells(entry), escape(entry["error"] or ""))
    return shown


WIDE = 120
"""Columns the log table needs; a narrower terminal (or a pipe) gets two lines an entry."""


def _log_lines(entry: dict[str, Any]) -> str:
    """`1056  2026-10-23 15:00  failed  Ben › Warm Lead Welcome › free-guide (attempt 1, lag
    0m)`, and the error indented below."""
    started = entry["started_at"]
    when = f"{started:%Y-%m-%d %H:%M}" if started else "-"
    lag = figures.cell("lag_seconds", entry["lag_seconds"])
    line = (
        f"{entry['id']}  {when}  {entry['status']}  {entry['lead']} › {entry['sequence']} › "
        f"{entry['step_id']} (attempt {entry['attempt']}, lag {lag})"
    )
    return escape(line + (f"\n      {entry['error']}" if entry["error"] else ""))


def _print_entry(entry: dict[str, Any], json: bool) -> None:
    if json:
        print(json_text(entry), flush=True)
        return
    error = f"  {entry['error']}" if entry["error"] else ""
    out.print(escape("  ".join(_log_cells(entry)) + error))


def report(
    html: Annotated[Path, typer.Option("--html", help="The HTML file to write.")],
    since: Since = None,
    until: Until = None,
    json: Annotated[
        bool, typer.Option("--json", help="Also print the report's figures as JSON.")
    ] = False,
) -> None:
    """Write one self-contained HTML file with the figures as charts (opens offline).

    \b
    Examples:
      nurture report --html report.html --since 30d
    """
    from nurture.insights.report import render_html, report_data

    now = datetime.now(UTC)
    with state.session() as session:
        data = report_data(
            session, _window(since, until), now, state.settings.experiments.min_sample
        )
    html.write_text(render_html(data), encoding="utf-8")
    message = f"wrote {html} ({len(data['sequences'])} sequences)"
    print_result(data | {"html": str(html)}, json=json, message=message)
