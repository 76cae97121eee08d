"""The dry run: the real engine on a simulated clock, a throwaway in-memory store, a memory channel.

    run = dry_run(project, Scenario(lead={"name": "Ana", "score": 45}, sequence="warm-lead-welcome",
                                    start=datetime(2025, 3, 3, 9, tzinfo=UTC)))

The project's sequences are applied to a fresh SQLite database in memory; the lead arrives
through the code `nurture leads add` uses; then the clock jumps from one due time (or event)
to the next and `dispatch.drain` runs, exactly as the daemon does. Nothing is sent and the
project's store is never opened.
"""

import itertools
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, SQLModel, select

from nurture.channels import KINDS
from nurture.channels.memory import MemoryChannel
from nurture.engine import booking as slots
from nurture.engine import dispatch
from nurture.engine.calendars import Calendars
from nurture.engine.complete import Job
from nurture.engine.dispatch import EngineConfig
from nurture.errors import NotFound, NurtureError
from nurture.insights import timeline
from nurture.leads.enrollment import Offer, decide, funnel_offers, new_enrollment
from nurture.leads.records import LeadInput, LeadRules, add_lead, clean, find_funnel, lead_row
from nurture.project.apply import apply_plan
from nurture.project.plan import build_plan
from nurture.rules.booking import Booking
from nurture.rules.caps import Caps
from nurture.rules.matching import Candidate, Decision
from nurture.simulate.events import Calls, Failures, Happening, happen, schedule
from nurture.spec.cases import CaseLead
from nurture.spec.diagnostics import did_you_mean
from nurture.spec.files import SequenceFile
from nurture.spec.models import SequenceSpec
from nurture.spec.names import slugify
from nurture.spec.variants import variant_problem
from nurture.store.db import Store, create_engine
from nurture.store.tables import Enrollment, Lead, Sequence

MAX_TURNS = 10_000  # steps are finite and retries bounded: this only guards the loop
WORKER = "dry-run"
APPLIED_AT = datetime(2000, 1, 1, tzinfo=UTC)  # any time before the runs: sequences exist first
_runs = itertools.count(1)


@dataclass(frozen=True)
class Project:
    """What a dry run needs of the project: its sequence files and settings."""

    files: list[SequenceFile]
    root: Path
    rules: LeadRules = LeadRules()
    coach: dict[str, Any] = field(default_factory=dict)
    booking: Booking | None = None
    """The coach's availability: appointments book against it as the daemon's would."""
    calendars: Calendars | None = None
    """The coach's real calendar (`nurture test --calendar`): auto bookings skip its busy
    times, read over CalDAV as the daemon reads them; None: the availability only."""
    caps: Caps = field(default_factory=Caps)
    """The project's frequency caps ([caps]): the dry run keeps to them as the daemon does."""
    applied: list[sqlite3.Connection] = field(default_factory=list, compare=False, repr=False)
    """The store with the sequences applied, built once and copied for each run."""

    def store_image(self) -> sqlite3.Connection:
        """A database in memory with every table and the project's sequences applied."""
        if not self.applied:
            with memory_store() as store:
                with store.session(immediate=True) as session:
                    plan = build_plan(session, self.files, root=self.root)
                    apply_plan(session, plan, APPLIED_AT)
                image = sqlite3.connect(":memory:", check_same_thread=False)
                with store.engine.connect() as connection:
                    driver = connection.connection.driver_connection
                    assert driver is not None, "a memory store's connection is sqlite3's"
                    driver.backup(image)
            self.applied.append(image)
        return self.applied[0]


@dataclass(frozen=True)
class Scenario:
    """A lead, where it arrives, when, and what happens to it."""

    lead: LeadInput
    start: datetime
    sequence: str | None = None  # None: the funnel's choice
    funnel: str | None = None
    events: tuple[str, ...] = ()
    until: timedelta | None = None
    variants: tuple[tuple[str, str], ...] = ()
    """Variants pinned, (step id, variant id): the lead gets these instead of drawing."""


@dataclass
class DryRun:
    """What happened: the matching decision, the timeline, and the lead and enrollment at the end."""

    sequence: str | None
    funnel: str | None
    decision: Decision | None
    zone: str
    rows: list[timeline.Row] = field(default_factory=list)
    status: str | None = None
    lead: dict[str, Any] = field(default_factory=dict)

    @property
    def chosen(self) -> str | None:
        """The sequence matching picked in the funnel (None: no funnel, or no match)."""
        return self.decision.winner.name if self.decision and self.decision.winner else None

    def steps(self, *outcomes: str) -> list[str]:
        """Step ids whose last attempt ended in one of `outcomes`, in the order they ran."""
        last = {row.step: row for row in self.rows if row.kind == "step" and row.step is not None}
        return [step for step, row in last.items() if row.outcome in outcomes]

    def executed(self) -> list[str]:
        return self.steps("sent", "done")

    def to_dict(self) -> dict[str, Any]:
        decision = self.decision
        return {
            "sequence": self.sequence,
            "funnel": self.funnel,
            "chosen": self.chosen,
            "reason": decision.reason if decision else None,
            "timezone": self.zone,
            "status": self.status,
            "lead": self.lead,
            "timeline": [row.to_dict(self.zone) for row in self.rows],
        }


EXAMPLE_PHONE = "+12025550100"  # a US number reserved for fiction


def lead_input(lead: CaseLead, timezone: str | None = None) -> LeadInput:
    """A test lead as the store takes it; without email or phone it gets example ones to send to."""
    local = slugify(lead.name).replace("-", ".") or "lead"
    return LeadInput(
        name=lead.name,
        email=lead.email or f"{local}@example.com",
        phone=lead.phone or EXAMPLE_PHONE,
        source=lead.source,
        status=lead.status,
        temperature=lead.temperature,
        score=lead.score,
        tags=list(lead.tags),
        timezone=timezone or lead.timezone,
        fields=dict(lead.fields),
    )


@contextmanager
def memory_store(image: sqlite3.Connection | None = None) -> Iterator[Store]:
    """A fresh store in memory, a copy of `image` or empty with every table; gone afterwards."""
    database = sqlite3.connect(":memory:", check_same_thread=False)
    if image is not None:
        image.backup(database)
    engine = create_engine("sqlite://", poolclass=StaticPool, creator=lambda: database)
    if image is None:
        SQLModel.metadata.create_all(engine)
    try:  # a URL of its own: parsed versions are cached by store URL
        yield Store(f"sqlite://dry-run-{next(_runs)}", engine)
    finally:
        engine.dispose()
        database.close()


def dry_run(project: Project, scenario: Scenario) -> DryRun:
    """Run the scenario to the end of the sequence (or `until`); nothing leaves the process."""
    happenings = schedule(list(scenario.events), scenario.start)
    failures = Failures()
    channel = MemoryChannel(behaviour=failures)
    with memory_store(project.store_image()) as store:
        run, lead_id, spec = _arrive(store, project, scenario)
        if spec is None:
            return run
        _pin(store, lead_id, spec, scenario.variants)
        failures.know(spec)
        events = _simulate(store, project, scenario, lead_id, happenings, channel, failures)
        with store.session() as session:
            messages = {m.execution_id: m for m in channel.attempts if m.execution_id}
            zone = project.rules.default_zone
            rows = timeline.read(session, lead_id, zone, messages)
            if project.booking is not None:
                rows = [_slots_shown(session, row, project.booking, run.zone) for row in rows]
            run.rows = timeline.ordered(rows + events)
            run.status = next((r.outcome for r in reversed(rows) if r.kind == "end"), None)
            run.lead = _final(session.get_one(Lead, lead_id))
    return run


def _arrive(
    store: Store, project: Project, scenario: Scenario
) -> tuple[DryRun, int, SequenceSpec | None]:
    """The lead stored and enrolled: in SEQUENCE (matching only reported), else as its funnel picks."""
    with store.session(immediate=True) as session:
        if scenario.sequence is None:
            return _through_funnel(session, project, scenario)
        return _into_sequence(session, project, scenario)


def _through_funnel(
    session: Session, project: Project, scenario: Scenario
) -> tuple[DryRun, int, SequenceSpec | None]:
    """As `nurture leads add --funnel F` does it: matched, recorded, enrolled in the winner."""
    if not scenario.funnel:
        raise NurtureError("give a SEQUENCE to run, or --funnel to let matching choose one")
    arrival = add_lead(session, scenario.lead, scenario.funnel, scenario.start, project.rules)
    winner = arrival.decision.winner
    spec = _spec_named(project, winner.name) if winner else None
    return _run(spec, scenario, arrival.decision, arrival.lead, project), arrival.lead.id, spec


def _into_sequence(
    session: Session, project: Project, scenario: Scenario
) -> tuple[DryRun, int, SequenceSpec]:
    """Enrolled in the sequence under test whatever matching says; the decision is reported."""
    rules, start = project.rules, scenario.start
    spec = _spec_named(project, scenario.sequence or "")
    funnel = find_funnel(session, scenario.funnel) if scenario.funnel else None
    values = clean(scenario.lead, rules.phone_region)
    lead = Lead(**lead_row(values, funnel.id if funnel else None, start, rules))
    session.add(lead)
    session.flush()
    decision = decide(funnel_offers(session, funnel.id), lead)[0] if funnel else None
    row = session.exec(select(Sequence).where(Sequence.slug == spec.slug)).one()
    candidate = Candidate(spec.name, spec.priority, spec.active, spec.trigger_conditions)
    offer = Offer(row.id, row.current_version, spec, candidate)
    enrollment = new_enrollment(lead.id, lead.timezone, offer, start, rules.default_zone)
    session.add(Enrollment(**enrollment))
    return _run(spec, scenario, decision, lead, project), lead.id, spec


def _run(
    spec: SequenceSpec | None,
    scenario: Scenario,
    decision: Decision | None,
    lead: Lead,
    project: Project,
) -> DryRun:
    zone = project.rules.default_zone
    if spec is not None:
        zone = timeline.lead_zone(spec, lead, zone)
    name = spec.name if spec else None
    return DryRun(name, scenario.funnel, decision, zone, lead=_final(lead))


def _pin(
    store: Store, lead_id: int, spec: SequenceSpec, pinned: tuple[tuple[str, str], ...]
) -> None:
    """The lead's enrollment gets the pinned variants instead of those it drew."""
    for step_id, variant_id in pinned:
        problem = variant_problem(spec, step_id, variant_id)
        if problem:
            raise NurtureError(f"--variant {step_id}={variant_id}: {problem}")
    if not pinned:
        return
    with store.session(immediate=True) as session:
        enrollment = session.exec(select(Enrollment).where(Enrollment.lead_id == lead_id)).one()
        drawn = dict(enrollment.variants or {})
        drawn |= {step_id: [variant_id, enrollment.version] for step_id, variant_id in pinned}
        enrollment.variants = drawn
        session.add(enrollment)


def _spec_named(project: Project, name: str) -> SequenceSpec:
    by_slug = {file.spec.slug: file.spec for file in project.files}
    spec = by_slug.get(slugify(name))
    if spec is None:
        names = [spec.name for spec in by_slug.values()]
        raise NotFound(f"no sequence {name!r}{did_you_mean(name, names, by_word=True)}")
    return spec


def _simulate(
    store: Store,
    project: Project,
    scenario: Scenario,
    lead_id: int,
    happenings: list[Happening],
    channel: MemoryChannel,
    failures: Failures,
) -> list[timeline.Row]:
    """Jump the clock to the next event or due step until nothing is left (or `until`)."""
    end = scenario.start + scenario.until if scenario.until is not None else None
    pending, rows = list(happenings), []
    channels = dict.fromkeys(KINDS, channel)
    zone, coach = project.rules.default_zone, project.coach
    engine = EngineConfig(
        WORKER,
        in_flight=1,
        default_zone=zone,
        coach=coach,
        caps=project.caps,
        booking=project.booking,
        calendars=project.calendars,
    )
    report = dispatch.Report(deferrals=[])
    for _ in range(MAX_TURNS):
        due = dispatch.next_due(store)
        event_at = pending[0].at if pending else None
        now = min((t for t in (due, event_at) if t is not None), default=None)
        if now is None or (end is not None and now > end):
            break
        if event_at is not None and event_at == now:
            rows.append(_happen(store, project, lead_id, pending.pop(0), failures))
            continue
        dispatch.drain(store, now, engine, channels, report)
        rows += [_deferred(job, now) for job in report.deferrals or []]
        report.deferrals = []
    return rows


def _deferred(job: Job, at: datetime) -> timeline.Row:
    """A step a frequency cap made wait (or an exclusive sequence held), as the timeline shows it."""
    outcome = "deferred" if job.status == "deferred" else "skipped"
    action = job.step.action_type.value if job.step else None
    notes = (job.error.removeprefix("deferred: "),) if job.error else ()
    return timeline.Row(at, "step", outcome, job.step_id, action, job.attempt, notes=notes)


def _happen(
    store: Store, project: Project, lead_id: int, happening: Happening, failures: Failures
) -> timeline.Row:
    with store.session(immediate=True) as session:
        lead = session.get_one(Lead, lead_id)
        calls = Calls(project.booking, project.calendars)
        said = happen(session, lead, happening, project.rules, failures, calls)
    return timeline.Row(
        at=happening.at, kind="event", outcome="event", detail=happening.text, notes=(said,)
    )


def _slots_shown(session: Session, row: timeline.Row, booking: Booking, zone: str) -> timeline.Row:
    """A call still offered at the end of the run, with the slots its booking page offered."""
    if row.action != "schedule_appointment" or not row.detail.endswith("(offered)"):
        return row
    return replace(row, notes=(*row.notes, _offered(session.connection(), booking, row.at, zone)))


def _offered(
    connection: Connection, booking: Booking, at: datetime, zone: str, shown: int = 3
) -> str:
    """What the booking page offers at `at`, in a few words: its first slots, in `zone`."""
    free = [slot.astimezone(ZoneInfo(zone)) for slot in slots.open_slots(connection, booking, at)]
    if not free:
        return "the booking page offers no free slot"
    first = ", ".join(f"{slot:%a %m-%d %H:%M}" for slot in free[:shown])
    more = f" and {len(free) - shown} more until {free[-1]:%a %m-%d}" if len(free) > shown else ""
    return f"the booking page offers {first} {free[0]:%Z}{more}"


def _final(lead: Lead) -> dict[str, Any]:
    keys = ("name", "email", "phone", "status", "temperature", "score", "tags", "timezone")
    return {key: getattr(lead, key) for key in keys} | {"opted_out": list(lead.opted_out)}
