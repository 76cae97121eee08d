"""Rendering `nurture stats` figures: rich tables, drop-off bars, CSV."""

import csv
import sys
from typing import Any

from rich import box
from rich.bar import Bar
from rich.markup import escape
from rich.table import Table

from nurture.cli import experiment_view
from nurture.cli.output import out
from nurture.insights.units import duration, percent


def _headers(plain: tuple[str, ...], named: dict[str, str]) -> dict[str, str]:
    """Column keys to headers: a plain column's header is its key."""
    return {key: key for key in plain} | named


SEQUENCE_COLUMNS = _headers(
    ("assigned", "active", "completed", "converted", "stopped", "failed", "unknown"),
    {
        "conversion_rate": "conversion\nrate",
        "avg_completion_seconds": "avg\ncompletion",
        "median_completion_seconds": "median\ncompletion",
        "avg_conversion_seconds": "avg to\nconversion",
    },
)
STEP_COLUMNS = _headers(
    ("reached", "executed", "succeeded", "failed", "skipped", "retried"),
    {
        "success_rate": "success\nrate",
        "avg_attempts": "avg\nattempts",
        "avg_lag_seconds": "avg lag\n(due→run)",
    },
)
APPOINTMENT_COLUMNS = _headers(
    ("offered", "booked", "attended", "cancelled", "unbooked"),
    {"no_show": "no show", "show_rate": "show\nrate"},
)
BAR_WIDTH = 40
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\0")
"""How a cell a spreadsheet would run as a formula starts (OWASP, CSV injection)."""
NO_MATCH = "no active sequence's trigger conditions hold: "  # said of every such reason


def cell(key: str, value: Any) -> str:
    """A figure as a person reads it: rates in %, seconds as durations."""
    if key.endswith("_rate"):
        return percent(value)
    if key.endswith("_seconds"):
        return duration(value)
    if value is None:
        return "-"
    return escape(str(value))


def table(rows: list[dict[str, Any]], first: tuple[str, ...], columns: dict, title: str) -> Table:
    if all(not row.get("unknown") for row in rows):  # a column only when something is unknown
        columns = {key: label for key, label in columns.items() if key != "unknown"}
    headers = [{"step_id": "step", "action_type": "action"}.get(key, key) for key in first]
    shown = Table(
        *headers, *columns.values(), title=title, title_justify="left", box=box.SIMPLE_HEAD
    )
    shown.columns[0].no_wrap = True  # names stay whole; headers wrap instead
    for column in shown.columns[len(first) :]:
        column.justify = "right"
        column.min_width = max(len(word) for word in str(column.header).split())
    for row in rows:
        shown.add_row(*(cell(key, row.get(key)) for key in (*first, *columns)))
    return shown


def overview(data: dict[str, Any]) -> None:
    """Every sequence, funnel and channel."""
    first = ("sequence", "version") if data["by"] == "version" else ("sequence",)
    out.print(table(data["sequences"], first, SEQUENCE_COLUMNS, "Sequences"))
    funnels(data["funnels"])
    if data.get("appointments"):
        out.print(table(data["appointments"], ("sequence",), APPOINTMENT_COLUMNS, "Appointments"))
    if "channels" in data:
        channels(data["channels"], by_day=data["by"] == "day")


def funnels(rows: list[dict[str, Any]]) -> None:
    shown = Table(
        "funnel",
        "leads in",
        "matched",
        "match rate",
        "by sequence",
        "unmatched: most common reasons",
        title="Funnels",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    for row in rows:
        by = ", ".join(f"{item['sequence']} {item['leads']}" for item in row["by_sequence"])
        why = "\n".join(
            f"{item['leads']} {item['reason'].removeprefix(NO_MATCH)}"
            for item in row["unmatched_reasons"]
        )
        shown.add_row(
            escape(row["funnel"]),
            str(row["leads_in"]),
            str(row["matched"]),
            percent(row["match_rate"]),
            escape(by or "-"),
            escape(why or "-"),
        )
    out.print(shown if rows else "Funnels: no leads arrived through a funnel in this period")


def channels(rows: list[dict[str, Any]], *, by_day: bool) -> None:
    columns = {"sent": "sent", "failed": "failed", "opted_out": "opted out"}
    if not by_day:
        out.print(
            table(rows, ("channel",), columns, "Channels") if rows else "Channels: no messages"
        )
        return
    days = [{"channel": r["channel"]} | d for r in rows for d in r["by_day"]]
    out.print(table(days, ("channel", "day"), columns, "Channels by day"))


def one_sequence(data: dict[str, Any]) -> None:
    """A sequence's summary, its steps, the drop-off bars and the reasons."""
    name = data["sequence"]
    if data["by"] == "version":
        return versions(data)
    if data["by"] == "variant":
        return experiment_view.show(data)
    out.print(table(data["summary"], ("sequence",), SEQUENCE_COLUMNS, name))
    out.print(table(data["steps"], ("step_id", "action_type"), STEP_COLUMNS, "Steps"))
    dropoff(data["steps"])
    reasons(data["steps"])


def dropoff(steps: list[dict[str, Any]]) -> None:
    """Leads that reached each step, as bars against the first step."""
    top = max((step["reached"] for step in steps), default=0)
    shown = Table(
        "step",
        "reached",
        "",
        "left before",
        title="Drop-off",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    for step in steps:
        bar = Bar(size=top or 1, begin=0, end=step["reached"], width=BAR_WIDTH, color="cyan")
        shown.add_row(
            escape(step["step_id"]),
            f"{step['reached']} ({percent(step['reached_rate'])})",
            bar,
            str(step["dropped"]),
        )
    out.print(shown)


def reasons(steps: list[dict[str, Any]]) -> None:
    for step in steps:
        for kind, label in (("skip_reasons", "skipped"), ("failure_reasons", "failed")):
            for item in step[kind]:
                out.print(escape(f"{step['step_id']}: {label} {item['count']}x: {item['reason']}"))


def versions(data: dict[str, Any]) -> None:
    """Versions side by side: the outcomes, then each step's reach."""
    numbers = sorted({row["version"] for row in data["versions"]} | _step_versions(data))
    by_version = {row["version"]: row for row in data["versions"]}
    shown = Table(
        "",
        *(f"v{n}" for n in numbers),
        title=data["sequence"],
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    for key, label in SEQUENCE_COLUMNS.items():
        shown.add_row(
            label.replace("\n", " "), *(cell(key, by_version.get(n, {}).get(key)) for n in numbers)
        )
    out.print(shown)
    steps = Table(
        "step",
        *(f"v{n} reached" for n in numbers),
        title="Drop-off by version",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    reach = {(s["version"], s["step_id"]): s for s in data["steps"]}
    removed = {s["step_id"] for s in data["steps"] if s.get("removed")}
    for step_id in dict.fromkeys(s["step_id"] for s in data["steps"]):  # the newest's order
        cells = [reach.get((n, step_id)) for n in numbers]
        label = f"{step_id} (removed)" if step_id in removed else step_id
        steps.add_row(escape(label), *(_reach(found) for found in cells))
    out.print(steps)
    if data.get("canary"):
        experiment_view.show_canary(data)


def _step_versions(data: dict[str, Any]) -> set[int]:
    return {step["version"] for step in data["steps"]}


def _reach(step: dict[str, Any] | None) -> str:
    """`3 (75.0%)`; `0` when the version's first step had no one yet; blank for a version
    without the step."""
    if step is None:
        return ""
    if step["reached_rate"] is None:
        return str(step["reached"])
    return f"{step['reached']} ({percent(step['reached_rate'])})"


def write_csv(rows: list[dict[str, Any]]) -> None:
    """Rows as CSV on stdout; list values (reasons, by day) are left out."""
    if not rows:
        return
    keys = [key for key, value in rows[0].items() if not isinstance(value, list)]
    writer = csv.DictWriter(sys.stdout, keys, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows({key: as_text(value) for key, value in row.items()} for row in rows)


def as_text(value: Any) -> Any:
    """A CSV cell a spreadsheet shows as text: one that starts like a formula gets a leading '."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def main_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The table `--csv` writes: steps of a sequence, versions, variants, channel days, or the
    sequences."""
    if data["by"] == "variant":
        return [
            {"step": found["step"], "control": found["control"]} | variant
            for found in data["experiments"]
            for variant in found["variants"]
        ]
    if "steps" in data:
        return data["steps"] if data["by"] != "version" else data["versions"]
    if data["by"] == "day":
        return [{"channel": r["channel"]} | d for r in data["channels"] for d in r["by_day"]]
    if data["by"] == "channel":
        return data["channels"]
    return data["sequences"]
