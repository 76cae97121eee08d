"""How a sequence performs (`nurture stats SEQUENCE`) and what it would do (`nurture test`), over HTTP.

The dry run runs on the sequences as the store holds them (those created over HTTP too),
in a throwaway store in memory: nothing is sent and the project's store is not changed.
"""

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query
from pydantic import Field, field_validator

from nurture.api.auth import allows
from nurture.api.deps import Ctx
from nurture.api.errors import ERRORS
from nurture.api.leads import Answer
from nurture.api.sequences import Ref
from nurture.errors import NurtureError
from nurture.insights.report import StatsRequest, gather
from nurture.project import stored
from nurture.rules.periods import Window
from nurture.simulate.dryrun import Project, Scenario, dry_run, lead_input
from nurture.spec.base import SpecModel
from nurture.spec.cases import CaseLead
from nurture.spec.durations import parse_duration
from nurture.spec.events import EventText
from nurture.spec.times import PAST_THE_CALENDAR, UsableTime, check_span
from nurture.spec.window import TimeZoneName

router = APIRouter(prefix="/api/nurturing-sequences", tags=["sequences"], responses=ERRORS)
When = Annotated[
    str | None,
    Query(max_length=40, description="A duration back from now (7d, 12h) or an ISO date."),
]
FunnelRef = Annotated[
    str | None, Query(max_length=200, description="Only the leads of this funnel (name or slug).")
]


class SequenceFigures(Answer):
    sequence: str
    assigned: int
    active: int
    completed: int
    converted: int
    stopped: int
    failed: int
    unknown: int
    conversion_rate: float | None
    avg_completion_seconds: float | None
    median_completion_seconds: float | None
    avg_conversion_seconds: float | None


class Reason(Answer):
    reason: str
    count: int


class StepFigures(Answer):
    step_id: str
    name: str
    action_type: str | None
    reached: int
    reached_rate: float | None
    dropped: int
    executed: int
    succeeded: int
    failed: int
    skipped: int
    retried: int
    unknown: int
    success_rate: float | None
    avg_attempts: float | None
    avg_lag_seconds: float | None
    skip_reasons: list[Reason]
    failure_reasons: list[Reason]


class VariantFigures(Answer):
    """One variant of an experiment step (the control has no difference, p-value or test)."""

    variant: str
    leads: int
    conversions: int
    conversion_rate: float | None
    conversion_interval: list[float] | None = Field(description="95% Wilson interval.")
    difference: float | None = Field(None, description="Its rate minus the control's.")
    difference_interval: list[float] | None = Field(
        None, description="95% interval of the difference (Newcombe's hybrid score)."
    )
    p_value: float | None = None
    test: str | None = Field(None, description="two-proportion z-test or Fisher's exact test.")
    delivery_recorded: int
    delivered_rate: float | None
    read_rate: float | None


class ExperimentFigures(Answer):
    """An experiment step's variants side by side, and what they allow one to say."""

    step: str
    control: str
    ended: bool = Field(description="The current version has no variants on this step.")
    variants: list[VariantFigures]
    min_sample: int = Field(description="Leads each variant needs before a winner is named.")
    alpha: float = Field(description="The p-value a difference must be under.")
    verdict: str


class StatsOut(Answer):
    """`nurture stats SEQUENCE --json` in camelCase: outcomes, then each step's figures (and
    with `by=variant`, each experiment's)."""

    sequence: str
    current_version: int
    since: datetime | None
    until: datetime | None
    summary: SequenceFigures
    steps: list[StepFigures]
    experiments: list[ExperimentFigures] | None = None


@router.get("/{id}/stats", dependencies=allows("read"), response_model=StatsOut)
def sequence_stats(
    ctx: Ctx,
    id: Ref,
    since: When = None,
    until: When = None,
    funnel: FunnelRef = None,
    by: Annotated[
        Literal["variant"] | None,
        Query(description="variant: each experiment step's variants, with intervals and p-values."),
    ] = None,
) -> StatsOut:
    """Enrollments by outcome, conversion, completion time; per step reached, drop-off, reasons."""
    now = datetime.now(UTC)
    window = Window.parse(since, until, now, prefix="")
    min_sample = ctx.settings.experiments.min_sample
    with ctx.store.session() as session:
        name = stored.resolve(session, id).name
        data = gather(session, StatsRequest(window, name, funnel, by, min_sample))
    return StatsOut.model_validate(data | {"summary": data["summary"][0]})


class DryRunIn(SpecModel):
    """A lead and, optionally, when it arrives and what happens to it."""

    lead: CaseLead = Field(default_factory=CaseLead)
    funnel: str | None = Field(
        None, min_length=1, max_length=200, description="Also report what matching would pick."
    )
    start: UsableTime | None = Field(
        None, description="When the lead arrives (years 1900-2999); default now (UTC)."
    )
    tz: TimeZoneName | None = Field(None, description="The lead's IANA time zone.")
    until: str | None = Field(None, max_length=20, description="Stop after e.g. 3d.")
    events: list[Annotated[EventText, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=100, examples=[["+2d convert", "+4h fail=send_email"]]
    )
    variants: dict[Annotated[str, Field(max_length=100)], Annotated[str, Field(max_length=40)]] = (
        Field(
            default_factory=dict,
            max_length=100,
            description="The variant the lead gets, by step id (as `nurture test --variant`).",
        )
    )

    @field_validator("until")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            check_span(parse_duration(value))  # a ValueError is a 422 naming `until`
        return value

    def scenario(self, sequence: str) -> Scenario:
        start = self.start or datetime.now(UTC).replace(second=0, microsecond=0)
        until: timedelta | None = parse_duration(self.until) if self.until else None
        return Scenario(
            lead=lead_input(self.lead, self.tz),
            start=_aware(start),
            sequence=sequence,
            funnel=self.funnel,
            events=tuple(self.events),
            until=until,
            variants=tuple(self.variants.items()),
        )


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)


class TimelineRow(Answer):
    at: datetime
    local: str = Field(description="The time as the lead sees it.")
    kind: str = Field(description="step, event or end.")
    outcome: str
    step: str | None
    action: str | None
    attempt: int
    detail: str
    notes: list[str]
    message: dict[str, Any] | None


class DryRunLead(Answer):
    name: str
    email: str | None
    phone: str | None
    status: str | None
    temperature: str | None
    score: int
    tags: list[str]
    timezone: str | None
    opted_out: list[str]


class DryRunOut(Answer):
    """`nurture test SEQUENCE --json` in camelCase: the decision, the timeline, the lead at the end."""

    sequence: str | None
    funnel: str | None
    chosen: str | None = Field(description="What matching would pick in `funnel`.")
    reason: str | None
    timezone: str
    status: str | None = Field(description="How the enrollment ended (or stands at `until`).")
    lead: DryRunLead = Field(description="The lead at the end of the run.")
    timeline: list[TimelineRow]


@router.post("/{id}/test", dependencies=allows("read"), response_model=DryRunOut)
def test_sequence(ctx: Ctx, id: Ref, body: Annotated[DryRunIn | None, Body()] = None) -> DryRunOut:
    """Dry-run the sequence for a lead on a simulated clock: nothing is sent or stored."""
    body = body or DryRunIn()
    with ctx.store.session() as session:
        name = stored.resolve(session, id).name
        files = stored.as_files(session, ctx.settings.project_dir)
    rules, coach = ctx.rules, ctx.settings.coach.model_dump()
    try:
        project = Project(
            files, ctx.settings.project_dir, rules, coach, caps=ctx.settings.caps.rules()
        )
        run = dry_run(project, body.scenario(name))
    except OverflowError:  # a sequence's durations (a retry delay) are not bounded: the clock is
        raise NurtureError(PAST_THE_CALENDAR) from None
    return DryRunOut.model_validate(run.to_dict())
