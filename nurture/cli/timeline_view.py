"""How `nurture test` shows a dry run (the decision, the timeline) and test case results."""

from rich.markup import escape
from rich.table import Table

from nurture.cli.output import out
from nurture.insights.timeline import Row, local_time
from nurture.simulate.cases import CaseResult
from nurture.simulate.dryrun import DryRun
from nurture.simulate.preview import decision_lines
from nurture.simulate.preview import summary as summary  # `nurture test` ends with it

STYLES = {"sent": "green", "done": "green", "skipped": "yellow", "retry": "magenta"}
STYLES |= {"deferred": "magenta"}
STYLES |= {"failed": "red", "unknown": "red", "event": "cyan", "converted": "bold cyan"}
STYLES |= {"completed": "bold green", "stopped": "bold yellow", "pending": "dim"}


def show_decision(run: DryRun) -> None:
    """Which sequence the lead's funnel picks, and every candidate's checks."""
    lines = decision_lines(run)
    if not lines:
        return
    for line in lines:
        out.print(escape(line))
    out.print()


def timeline_table(run: DryRun) -> Table:
    table = Table(title=f"{run.sequence} — times in {run.zone}", title_justify="left")
    table.add_column("local time", no_wrap=True)
    table.add_column("UTC", overflow="fold", min_width=5, ratio=1)
    table.add_column("step", no_wrap=True, max_width=24)
    table.add_column("action", overflow="fold", min_width=6, ratio=1)
    table.add_column("message or effect", overflow="fold", min_width=16, ratio=4)
    table.add_column("outcome", overflow="fold", min_width=12, ratio=2)
    for row in run.rows:
        table.add_row(
            local_time(row.at, run.zone),
            f"{row.at:%m-%d %H:%M}",
            _step(row),
            row.action or "",
            escape(_short(row.detail)),
            _outcome(row),
        )
    return table


def _short(text: str, limit: int = 180) -> str:
    """A message on a few lines of the table (--json has it whole)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _step(row: Row) -> str:
    if row.kind == "step":
        return escape(row.step or "") + (f" (try {row.attempt})" if row.attempt > 1 else "")
    return "[cyan]event[/]" if row.kind == "event" else "[bold]end[/]"


def _outcome(row: Row) -> str:
    style = STYLES.get(row.outcome, "")
    head = f"[{style}]{row.outcome}[/]" if style else row.outcome
    return "\n".join([head, *(escape(note) for note in row.notes)])


def show_cases(results: list[CaseResult], seconds: float) -> None:
    """✓/✗ per case, a diff under each failure, then the counts."""
    for result in results:
        mark = "[green]✓[/]" if result.passed else "[red]✗[/]"
        name = escape(f"{result.sequence} › {result.case}")
        out.print(f"{mark} {name} [dim]({result.seconds:.2f}s)[/]")
        if not result.passed:
            _show_failure(result)
    failed = sum(not r.passed for r in results)
    passed = len(results) - failed
    colour = "red" if failed else "green"
    tail = f", [red]{failed} failed[/]" if failed else ""
    out.print(f"\n[{colour}]{passed} passed[/]{tail} in {seconds:.2f}s")


def _show_failure(result: CaseResult) -> None:
    out.print(f"    [dim]{escape(result.file)}[/]")
    if result.error is not None:
        out.print(f"    [red]error:[/] {escape(result.error)}")
        return
    for mismatch in result.mismatches:
        out.print(f"    {escape(mismatch.message)}")
        for line in mismatch.diff:
            style = {"-": "red", "+": "green"}.get(line[:1], "")
            text = escape(line)
            out.print(f"      [{style}]{text}[/]" if style else f"      {text}")
    if result.run is not None and result.run.rows:
        out.print("    actual timeline:")
        for row in result.run.rows:
            out.print(escape(f"      {_line(row, result.run.zone)}"))


def _line(row: Row, zone: str) -> str:
    what = row.step if row.kind == "step" else row.kind
    extra = "; ".join([row.detail, *row.notes] if row.kind != "step" else row.notes)
    return f"{local_time(row.at, zone)}  {what:<22} {row.outcome:<9} {extra}".rstrip()
