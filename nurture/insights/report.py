"""What `nurture stats` and `nurture report --html` show: the figures gathered, the HTML rendered.

The HTML is one file with its CSS, its data (JSON) and a small script that draws the charts
as SVG inline: it opens anywhere, offline, and nothing is fetched.
"""

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from typing import Any, Literal

from jinja2 import Environment, select_autoescape
from sqlmodel import Session

from nurture.insights import channel_stats, stats, step_stats
from nurture.insights.appointments import appointment_figures
from nurture.leads.records import find_funnel
from nurture.project import sequences
from nurture.rules.periods import Window
from nurture.spec.durations import format_duration

By = Literal["version", "channel", "day"]


@dataclass(frozen=True)
class StatsRequest:
    """What `nurture stats` was asked for."""

    window: Window
    sequence: str | None = None
    funnel: str | None = None
    by: By | None = None


def gather(session: Session, request: StatsRequest) -> dict[str, Any]:
    """The figures of one `nurture stats` view, as plain data (the CLI renders or dumps it)."""
    window = request.window
    funnel_id = find_funnel(session, request.funnel).id if request.funnel else None
    data: dict[str, Any] = {"since": window.since, "until": window.until, "by": request.by}
    if request.sequence is not None:
        return data | _one_sequence(session, request, request.sequence, funnel_id)
    data["sequences"] = stats.sequence_figures(
        session, window, funnel_id=funnel_id, by_version=request.by == "version"
    )
    data["funnels"] = stats.funnel_figures(session, window, funnel_id)
    data["appointments"] = appointment_figures(session, window)
    if request.by in ("channel", "day"):  # opt-in: it reads every message in the window
        data["channels"] = channel_stats.channel_figures(session, window)
    if request.by == "channel":
        for channel in data["channels"]:
            channel.pop("by_day")
    return data


def _one_sequence(
    session: Session, request: StatsRequest, name: str, funnel_id: int | None
) -> dict:
    row = sequences.find(session, name)
    window, by_version = request.window, request.by == "version"
    summary = stats.sequence_figures(
        session, window, sequence_id=row.id, funnel_id=funnel_id, by_version=by_version
    )
    return {
        "sequence": row.name,
        "current_version": row.current_version,
        "versions" if by_version else "summary": summary,
        "steps": step_stats.step_figures(
            session, row.id, window, by_version=by_version, funnel_id=funnel_id
        ),
    }


def report_data(session: Session, window: Window, now: datetime) -> dict[str, Any]:
    """Everything the HTML report draws."""
    live = stats.sequence_names(session.connection()).items()
    dropoff = {
        name: step_stats.step_figures(session, sequence_id, window)
        for sequence_id, (name, alive) in sorted(live, key=lambda item: item[1][0].casefold())
        if alive
    }
    return {
        "generated_at": now.isoformat(timespec="seconds"),
        "since": window.since.isoformat() if window.since else None,
        "until": window.until.isoformat() if window.until else None,
        "sequences": stats.sequence_figures(session, window),
        "conversions": stats.conversions_by_day(session, window),
        "dropoff": dropoff,
        "failures": channel_stats.failures(session, window),
        "channels": channel_stats.channel_figures(session, window),
        "appointments": appointment_figures(session, window),
    }


def render_html(data: dict[str, Any]) -> str:
    """The self-contained HTML page of a report."""
    environment = Environment(autoescape=select_autoescape(default=True))
    environment.filters |= {"percent": percent, "duration": duration}
    source = (
        resources.files("nurture.insights").joinpath("templates/report.html.j2").read_text("utf-8")
    )
    script = resources.files("nurture.insights").joinpath("templates/charts.js").read_text("utf-8")
    page = environment.from_string(source)
    payload = json.dumps(data, default=str).replace("</", "<\\/")
    return page.render(data=data, payload=payload, script=script)


def percent(value: float | None) -> str:
    """A rate as `41.7%`; `-` when there is nothing to divide."""
    return "-" if value is None else f"{value * 100:.1f}%"


def duration(value: float | None) -> str:
    """Seconds as their two largest units (`1d 4h`, `12m 5s`); `-` when there are none."""
    if value is None:
        return "-"
    return " ".join(format_duration(timedelta(seconds=round(value))).split()[:2])
