"""`nurture stats SEQUENCE --by variant` on a terminal: one table per experiment step."""

from typing import Any

from rich import box
from rich.markup import escape
from rich.table import Table

from nurture.cli.output import out
from nurture.insights.units import p_text, percent

COLUMNS = ("variant", "leads", "conv.", "rate (95% CI)", "vs control (95% CI)", "p", "test")


def show(data: dict[str, Any]) -> None:
    """Each experiment's variants, how they were judged, and the verdict."""
    found = data.get("experiments") or []
    if not found:
        out.print(f"{escape(data['sequence'])}: no step has run a variant in this window")
        return
    for experiment in found:
        out.print(_table(data["sequence"], experiment))
        _judged(experiment)


def _judged(experiment: dict[str, Any]) -> None:
    alpha, minimum = experiment["alpha"], experiment["min_sample"]
    out.print(
        f"  verdict: [bold]{escape(experiment['verdict'])}[/bold]\n"
        f"  (a winner needs {minimum:,} leads per variant (\\[experiments] min_sample) and "
        f"p < {alpha:g}; two-proportion z-test, Fisher's exact test when an expected count "
        "is under 5)",
        highlight=False,
    )


def show_canary(data: dict[str, Any]) -> None:
    """A canary against the current version, over the weeks both ran."""
    canary = data["canary"]
    since = canary["since"]
    when = f"enrolled since {since:%Y-%m-%d %H:%M} UTC" if since else "every enrollment"
    out.print(
        f"Canary: version {canary['version']} gets {canary['share']:.0%} of new enrollments; "
        f"compared over the same weeks ({when}):",
        highlight=False,
    )
    out.print(_table(data["sequence"], canary | {"step": "versions", "ended": False}))
    _judged(canary)


def _table(sequence: str, experiment: dict[str, Any]) -> Table:
    ended = " (ended: the current version has no variants)" if experiment["ended"] else ""
    title = f"{sequence} › {experiment['step']}{ended}"
    engaged = any(row["delivery_recorded"] for row in experiment["variants"])
    columns = COLUMNS + (("delivered", "read") if engaged else ())
    shown = Table(*columns, title=escape(title), title_justify="left", box=box.SIMPLE_HEAD)
    for row in experiment["variants"]:
        control = row["variant"] == experiment["control"]
        cells = [
            escape(row["variant"]) + (" (control)" if control else ""),
            f"{row['leads']:,}",
            f"{row['conversions']:,}",
            _rate(row["conversion_rate"], row["conversion_interval"]),
            "-" if control else _difference(row["difference"], row["difference_interval"]),
            "-" if control or row["p_value"] is None else p_text(row["p_value"]),
            "-" if control or row["test"] is None else row["test"],
        ]
        if engaged:
            cells += [percent(row["delivered_rate"]), percent(row["read_rate"])]
        shown.add_row(*cells)
    return shown


def _rate(rate: float | None, interval: list[float] | None) -> str:
    if rate is None or interval is None:
        return "-"
    return f"{percent(rate)} ({percent(interval[0])}-{percent(interval[1])})"


def _difference(difference: float | None, interval: list[float] | None) -> str:
    if difference is None or interval is None:
        return "-"
    points = [value * 100 for value in (difference, *interval)]
    return f"{points[0]:+.1f} pts ({points[1]:+.1f} to {points[2]:+.1f})"
