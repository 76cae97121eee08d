"""Test cases: each `tests:` case of a sequence file dry-run and checked against what it expects."""

import difflib
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from nurture.errors import NurtureError
from nurture.simulate.dryrun import DryRun, Project, Scenario, dry_run, lead_input
from nurture.spec.cases import Expectation, StepTime, TestCase
from nurture.spec.files import SequenceFile, shown
from nurture.spec.names import slugify

DEFAULT_START = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
"""When a case without `start` begins (a Monday): fixed, so a case gives the same result every day."""


@dataclass(frozen=True)
class Mismatch:
    """One expectation that did not hold: what, and the expected and actual values as lines."""

    what: str
    message: str
    diff: tuple[str, ...] = ()


@dataclass
class CaseResult:
    file: str
    sequence: str
    case: str
    seconds: float = 0.0
    mismatches: list[Mismatch] = field(default_factory=list)
    error: str | None = None
    run: DryRun | None = None

    @property
    def passed(self) -> bool:
        return not self.mismatches and self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "sequence": self.sequence,
            "case": self.case,
            "passed": self.passed,
            "seconds": round(self.seconds, 4),
            "error": self.error,
            "mismatches": [vars(m) | {"diff": list(m.diff)} for m in self.mismatches],
            "run": self.run.to_dict() if self.run else None,
        }


def run_cases(project: Project, sequence: str | None = None) -> list[CaseResult]:
    """Every case of every sequence (or of the one named), in file order."""
    files = [f for f in project.files if sequence is None or f.spec.slug == slugify(sequence)]
    if sequence is not None and not files:
        raise NurtureError(f"no sequence {sequence!r} in the project")
    return [
        run_case(project, file, index) for file in files for index in range(len(file.spec.tests))
    ]


def run_case(project: Project, file: SequenceFile, index: int) -> CaseResult:
    """Dry-run one case and check it; a case that cannot run is an error, not a crash."""
    case = file.spec.tests[index]
    line, column = file.position(("tests", index))
    result = CaseResult(f"{shown(file.path)}:{line}:{column}", file.spec.name, case.name)
    started = time.perf_counter()
    try:
        result.run = dry_run(project, _scenario(file, case))
        result.mismatches = check(case.expect, result.run, file)
    except NurtureError as error:
        result.error = str(error)
    result.seconds = time.perf_counter() - started
    return result


def _scenario(file: SequenceFile, case: TestCase) -> Scenario:
    start = case.start or DEFAULT_START
    funnel = case.funnel or (file.spec.funnels[0] if file.spec.funnels else None)
    return Scenario(
        lead=lead_input(case.lead),
        start=start if start.tzinfo else start.replace(tzinfo=UTC),
        sequence=file.spec.name,
        funnel=funnel,
        events=tuple(case.events),
        variants=tuple(case.variants.items()),
    )


def check(expect: Expectation, run: DryRun, file: SequenceFile) -> list[Mismatch]:
    """Every expectation the run does not meet."""
    found: list[Mismatch | None] = [_chosen(expect.chosen, run, file)]
    found.append(_list("steps", expect.steps, run.executed()))
    found.append(_list("skipped", expect.skipped, run.steps("skipped")))
    found += [_time(step, wanted, run) for step, wanted in expect.times.items()]
    found += [_contains(step, texts, run) for step, texts in expect.contains.items()]
    found.append(_equal("status", expect.status, run.status))
    found.append(_equal("score", expect.score, run.lead.get("score")))
    found.append(_tags(expect.tags, run.lead.get("tags", [])))
    return [mismatch for mismatch in found if mismatch is not None]


def _chosen(wanted: bool | None, run: DryRun, file: SequenceFile) -> Mismatch | None:
    if wanted is None:
        return None
    if run.funnel is None:
        return Mismatch("chosen", "no funnel to match in: give the case a `funnel:`")
    got = run.chosen == file.spec.name
    if got == wanted:
        return None
    why = run.decision.reason if run.decision else ""
    picked = f"{run.chosen} was chosen" if run.chosen else "no sequence was chosen"
    if wanted:
        return Mismatch(
            "chosen", f"expected {file.spec.name} in funnel {run.funnel}; {picked} ({why})"
        )
    return Mismatch(
        "chosen",
        f"expected another sequence in funnel {run.funnel}, but this one was chosen ({why})",
    )


def _list(what: str, wanted: list[str] | None, actual: list[str]) -> Mismatch | None:
    if wanted is None or wanted == actual:
        return None
    diff = [line for line in difflib.ndiff(wanted, actual) if not line.startswith("?")]
    return Mismatch(what, f"{what} differ (- expected, + actual)", tuple(diff))


def _time(step: str, wanted: StepTime, run: DryRun) -> Mismatch | None:
    rows = [row for row in run.rows if row.kind == "step" and row.step == step]
    if not rows:
        return Mismatch("times", f"{step} never ran; expected it {_window(wanted)}")
    at = rows[-1].at
    early = (wanted.at and at < _utc(wanted.at)) or (wanted.after and at < _utc(wanted.after))
    late = (wanted.at and at > _utc(wanted.at)) or (wanted.before and at > _utc(wanted.before))
    if not early and not late:
        return None
    return Mismatch("times", f"{step} ran at {at.isoformat()}; expected it {_window(wanted)}")


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _window(wanted: StepTime) -> str:
    if wanted.at:
        return f"at {wanted.at.isoformat()}"
    parts = [f"after {wanted.after.isoformat()}"] if wanted.after else []
    return " and ".join(parts + ([f"before {wanted.before.isoformat()}"] if wanted.before else []))


def _contains(step: str, texts: str | list[str], run: DryRun) -> Mismatch | None:
    rows = [row for row in run.rows if row.kind == "step" and row.step == step and row.detail]
    said = rows[-1].detail if rows else ""
    missing = [text for text in _as_list(texts) if text not in said]
    if not missing:
        return None
    shown_text = said or "(nothing: the step sent or did nothing)"
    lines = [f"- {text}" for text in missing] + [f"+ {line}" for line in shown_text.splitlines()]
    return Mismatch(
        "contains", f"{step}: the message lacks {', '.join(map(repr, missing))}", tuple(lines)
    )


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def _equal(what: str, wanted: Any, actual: Any) -> Mismatch | None:
    if wanted is None or wanted == actual:
        return None
    return Mismatch(what, f"{what}: expected {wanted}, got {actual}")


def _tags(wanted: list[str] | None, actual: Iterable[str]) -> Mismatch | None:
    actual = list(actual)
    if wanted is None or {t.casefold() for t in wanted} == {t.casefold() for t in actual}:
        return None
    return Mismatch(
        "tags", f"tags: expected {', '.join(wanted) or 'none'}, got {', '.join(actual) or 'none'}"
    )
