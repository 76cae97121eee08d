"""What `nurture stats` and `nurture report --html` show: the figures gathered, the HTML rendered.

The HTML is one file with its CSS, its data (JSON) and a small script that draws the charts
as SVG inline: it opens anywhere, offline, and nothing is fetched.
"""

import json
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any, Literal

from jinja2 import Environment, select_autoescape
from sqlmodel import Session

from nurture.errors import NurtureError
from nurture.insights import channel_stats, stats, step_stats
from nurture.insights.appointments import appointment_figures
from nurture.insights.units import duration, p_text, percent
from nurture.leads.records import find_funnel
from nurture.project import sequences
from nurture.rules.periods import Window

By = Literal["version", "channel", "day", "variant"]


@dataclass(frozen=True)
class StatsRequest:
    """What `nurture stats` was asked for."""

    window: Window
    sequence: str | None = None
    funnel: str | None = None
    by: By | None = None
    min_sample: int = 100
    """Leads each variant needs before `--by variant` names a winner (`[experiments]`)."""
    steps: bool = True
    """With a sequence: its steps' figures too (they read every execution of the sequence; the
    dashboard asks for them once, not with each of its three views)."""


def gather(session: Session, request: StatsRequest) -> dict[str, Any]:
    """The figures of one `nurture stats` view, as plain data (the CLI renders or dumps it)."""
    window = request.window
    funnel_id = find_funnel(session, request.funnel).id if request.funnel else None
    data: dict[str, Any] = {"since": window.since, "until": window.until, "by": request.by}
    if request.sequence is not None:
        return data | _one_sequence(session, request, request.sequence, funnel_id)
    if request.by == "variant":
        raise NurtureError("--by variant compares one sequence's variants: name the SEQUENCE")
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
    canary = row.canary_version is not None and by_version
    if canary and window.since is None:  # the versions side by side over the same weeks
        window = Window(row.canary_started_at, window.until)
    summary = stats.sequence_figures(
        session, window, sequence_id=row.id, funnel_id=funnel_id, by_version=by_version
    )
    found = {
        "sequence": row.name,
        "current_version": row.current_version,
        "versions" if by_version else "summary": summary,
    }
    if request.steps:
        found["steps"] = step_stats.step_figures(
            session, row.id, window, by_version=by_version, funnel_id=funnel_id
        )
    if request.by == "variant" or canary:
        from nurture.insights import experiments  # scipy: imported when asked for (0.3 s)

        if canary:
            found["canary"] = experiments.canary_figures(row, summary, window, request.min_sample)
        else:
            found["experiments"] = experiments.variant_figures(
                session, row.id, window, request.min_sample, funnel_id
            )
    return found


def report_data(
    session: Session, window: Window, now: datetime, min_sample: int = 100
) -> dict[str, Any]:
    """Everything the HTML report draws (experiments judged with `min_sample` per variant)."""
    from nurture.insights import experiments  # scipy: imported when a report is made

    live = stats.sequence_names(session.connection()).items()
    alive = [
        (i, name) for i, (name, up) in sorted(live, key=lambda item: item[1][0].casefold()) if up
    ]
    dropoff = {
        name: step_stats.step_figures(session, sequence_id, window) for sequence_id, name in alive
    }
    tests = {
        name: found
        for sequence_id, name in alive
        if (found := experiments.variant_figures(session, sequence_id, window, min_sample))
    }
    return {
        "experiments": tests,
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
    environment.filters |= {"percent": percent, "duration": duration, "p_text": p_text}
    source = (
        resources.files("nurture.insights").joinpath("templates/report.html.j2").read_text("utf-8")
    )
    script = resources.files("nurture.insights").joinpath("templates/charts.js").read_text("utf-8")
    page = environment.from_string(source)
    payload = json.dumps(data, default=str).replace("</", "<\\/")
    return page.render(data=data, payload=payload, script=script)
