"""Conditions checked against a lead, and the choice of the best sequence for a lead's funnel."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from nurture.spec.conditions import StepConditions, TriggerConditions


class LeadFacts(Protocol):
    source: str | None
    status: str | None
    temperature: str | None
    score: int
    tags: list[str]
    fields: dict[str, Any]


@dataclass(frozen=True)
class Check:
    """One condition: what it wants, what the lead has, whether it holds."""

    condition: str
    expected: str
    actual: str
    passed: bool

    def __str__(self) -> str:
        mark = "✓" if self.passed else "✗"
        return f"{mark} {self.condition}: wants {self.expected}, lead has {self.actual}"


@dataclass
class _NoLead:
    source: str | None = None
    status: str | None = None
    temperature: str | None = None
    score: int = 0
    tags: list[str] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)


def wanted(conditions: TriggerConditions | None) -> str:
    """What the conditions ask, for people: `lead_score 0-70; lead_status New or Contacted`."""
    checks = check_conditions(conditions, _NoLead())
    return "; ".join(f"{check.condition} {check.expected}" for check in checks)


def _fold(value: Any) -> str:
    return str(value).casefold()


def _any_of(name: str, wanted: list[str], actual: str | None) -> Check:
    passed = actual is not None and _fold(actual) in {_fold(w) for w in wanted}
    return Check(name, " or ".join(wanted), repr(actual) if actual is not None else "none", passed)


def check_conditions(conditions: TriggerConditions | None, lead: LeadFacts) -> list[Check]:
    """Every condition given, checked; string matching ignores case."""
    if conditions is None:
        return []
    checks = []
    if conditions.lead_score is not None:
        low, high = conditions.lead_score.min, conditions.lead_score.max
        checks.append(
            Check("lead_score", f"{low}-{high}", str(lead.score), low <= lead.score <= high)
        )
    for name, actual in (
        ("lead_source", lead.source),
        ("lead_status", lead.status),
        ("lead_temperature", lead.temperature),
    ):
        wanted = getattr(conditions, name)
        if wanted is not None:
            checks.append(_any_of(name, wanted, actual))
    if isinstance(conditions, StepConditions):
        checks += _step_checks(conditions, lead)  # a step's `appointment`: the engine checks it
    elif conditions.appointment is not None:
        wanted = (
            [conditions.appointment]
            if isinstance(conditions.appointment, str)
            else conditions.appointment
        )
        outcome = getattr(lead, "appointment_outcome", None)  # set only as a call ends
        checks.append(_any_of("appointment", list(wanted), outcome))
    return checks


def _step_checks(conditions: StepConditions, lead: LeadFacts) -> list[Check]:
    tags = {_fold(tag) for tag in lead.tags}
    shown = ", ".join(lead.tags) or "no tags"
    checks = []
    if conditions.tags is not None:
        wanted = conditions.tags
        checks.append(
            Check(
                "tags", "all of " + ", ".join(wanted), shown, all(_fold(t) in tags for t in wanted)
            )
        )
    if conditions.not_tags is not None:
        unwanted = conditions.not_tags
        checks.append(
            Check(
                "not_tags",
                "none of " + ", ".join(unwanted),
                shown,
                not any(_fold(t) in tags for t in unwanted),
            )
        )
    for key, asked in (conditions.fields or {}).items():
        options = asked if isinstance(asked, list) else [asked]
        actual = lead.fields.get(key)
        passed = actual is not None and _fold(actual) in {_fold(o) for o in options}
        checks.append(Check(f"fields.{key}", " or ".join(map(str, options)), repr(actual), passed))
    return checks


@dataclass(frozen=True)
class Candidate:
    """A sequence offered to the lead's funnel, with its checks."""

    name: str
    priority: int
    active: bool
    conditions: TriggerConditions

    def checks(self, lead: LeadFacts) -> list[Check]:
        return check_conditions(self.conditions, lead)


@dataclass(frozen=True)
class Verdict:
    candidate: Candidate
    checks: tuple[Check, ...]

    @property
    def matches(self) -> bool:
        return self.candidate.active and all(check.passed for check in self.checks)


@dataclass(frozen=True)
class Decision:
    """Which sequence a lead gets, every candidate's verdict, and why."""

    verdicts: tuple[Verdict, ...]
    winner: Candidate | None
    reason: str


def choose(candidates: Iterable[Candidate], lead: LeadFacts) -> Decision:
    """Best match: highest priority, then most conditions, then name."""
    verdicts = tuple(Verdict(c, tuple(c.checks(lead))) for c in candidates)
    matching = sorted(
        (v for v in verdicts if v.matches),
        key=lambda v: (
            -v.candidate.priority,
            -v.candidate.conditions.count(),
            v.candidate.name.casefold(),
        ),
    )
    if not matching:
        return Decision(verdicts, None, no_match_reason(verdicts))
    best = matching[0].candidate
    return Decision(verdicts, best, _win_reason(best, [v.candidate for v in matching[1:]]))


def no_match_reason(verdicts: Sequence[Verdict]) -> str:
    if not verdicts:
        return "no sequence is assigned to this funnel"
    if not any(v.candidate.active for v in verdicts):
        return "every sequence of this funnel is inactive"
    failed = [str(c) for v in verdicts if v.candidate.active for c in v.checks if not c.passed]
    return "no active sequence's trigger conditions hold: " + "; ".join(failed)


def _win_reason(best: Candidate, others: list[Candidate]) -> str:
    if not others:
        return "the only matching sequence"
    runner_up = others[0]
    if best.priority != runner_up.priority:
        return f"highest priority ({best.priority}) of {len(others) + 1} matching"
    if best.conditions.count() != runner_up.conditions.count():
        return f"most specific ({best.conditions.count()} conditions) at priority {best.priority}"
    return f"first by name among equally specific sequences at priority {best.priority}"
