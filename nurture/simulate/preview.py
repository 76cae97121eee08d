"""The builder's preview: a draft dry-run for a sample lead, rows as `nurture test` prints them.

The draft stands in for its file (or joins the project, when new), so the lead meets the rest
of the project as it would once the draft is saved; nothing is written or sent.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from nurture.errors import NurtureError
from nurture.insights.timeline import Row, local_time
from nurture.leads.records import LeadRules
from nurture.settings import Settings
from nurture.simulate.dryrun import DryRun, Project, Scenario, dry_run, lead_input
from nurture.spec.cases import CaseLead
from nurture.spec.diagnostics import Diagnostic, has_errors
from nurture.spec.files import check_files, shown


@dataclass(frozen=True)
class PreviewRow:
    """One line of the timeline, in the columns of `nurture test`'s table."""

    local_time: str
    utc: str
    step: str
    action: str
    message: str
    outcome: str
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {**vars(self), "notes": list(self.notes)}


@dataclass(frozen=True)
class Preview:
    """The dry run of a draft, or why there is none (its errors, in `validate`'s words)."""

    diagnostics: list[Diagnostic]
    run: DryRun | None = None
    rows: list[PreviewRow] = field(default_factory=list)
    decision: list[str] = field(default_factory=list)
    summary: str = ""
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "errors": [str(d) for d in self.diagnostics if d.severity == "error"],
            "error": self.error,
            "decision": self.decision,
            "timezone": self.run.zone if self.run else None,
            "status": self.run.status if self.run else None,
            "timeline": [row.to_dict() for row in self.rows],
            "summary": self.summary,
        }


def preview(
    settings: Settings,
    text: str,
    path: Path,
    lead: CaseLead,
    start: datetime,
    *,
    funnel: str | None = None,
    events: Sequence[str] = (),
) -> Preview:
    """Dry-run the draft `text` (the file at `path`, or to be) for `lead` from `start`."""
    coach_keys = frozenset(settings.coach.model_dump())
    result = check_files([settings.sequences_path], coach_keys=coach_keys, drafts={path: text})
    mine = [d for d in result.diagnostics if d.file == shown(path)]
    file = next((f for f in result.sequences if f.path.resolve() == path.resolve()), None)
    if file is None or has_errors(mine):
        return Preview([d for d in mine if d.severity == "error"])
    project = Project(
        result.sequences,
        settings.project_dir,
        LeadRules.from_settings(settings),
        settings.coach.model_dump(),
    )
    scenario = Scenario(lead_input(lead), start, file.spec.name, funnel, tuple(events))
    began = time.perf_counter()
    try:
        run = dry_run(project, scenario)
    except (NurtureError, OverflowError) as error:
        return Preview([], error=str(error) or "the run would pass the end of the calendar")
    seconds = time.perf_counter() - began
    rows = [_row(row, run.zone) for row in run.rows]
    return Preview([], run, rows, decision_lines(run), summary(run, seconds))


def _row(row: Row, zone: str) -> PreviewRow:
    step = row.step or "" if row.kind == "step" else row.kind
    if row.kind == "step" and row.attempt > 1:
        step += f" (try {row.attempt})"
    at = local_time(row.at, zone)
    return PreviewRow(
        at, f"{row.at:%m-%d %H:%M}", step, row.action or "", row.detail, row.outcome, row.notes
    )


def decision_lines(run: DryRun) -> list[str]:
    """Which sequence the lead's funnel picks, and every candidate's checks, line by line."""
    decision = run.decision
    if decision is None:
        return []
    lines = [f"Funnel {run.funnel}: {run.chosen or 'no sequence'} ({decision.reason})"]
    for verdict in decision.verdicts:
        mark = "✓" if verdict.matches else "✗"
        state = "" if verdict.candidate.active else " (inactive)"
        lines.append(
            f"  {mark} {verdict.candidate.name}, priority {verdict.candidate.priority}{state}"
        )
        lines += [f"      {check}" for check in verdict.checks]
    if run.sequence and run.chosen != run.sequence:
        lines.append(f"The timeline below is {run.sequence}'s, as if the lead were enrolled.")
    return lines


def summary(run: DryRun, seconds: float) -> str:
    """The line `nurture test` ends a dry run with: how it ended, what ran, how long it spans."""
    if run.sequence is None:
        return f"Not enrolled: nothing to run ({seconds:.2f}s)."
    counts: dict[str, int] = {}
    for row in run.rows:
        if row.kind == "step":
            counts[row.outcome] = counts.get(row.outcome, 0) + 1
    said = ", ".join(f"{n} {outcome}" for outcome, n in counts.items()) or "no step ran"
    happened = [row for row in run.rows if row.outcome != "pending"]  # not the step due next
    span = (happened[-1].at - happened[0].at) if happened else None
    simulated = f"{span.days}d {span.seconds // 3600}h simulated" if span else "nothing simulated"
    return f"{run.status}: {said} ({simulated} in {seconds:.2f}s; nothing was sent)"
