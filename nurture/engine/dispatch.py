"""The engine: claim due enrollments, run their steps, complete them (DESIGN.md §4).

    drain(store, now, EngineConfig(worker="w1"), channels_for("outbox", store))

A batch: the claim (lease the due enrollments; read their leads, funnels, sequences and any
execution recorded already for the attempt each runs) and what each step does (here), then
the send pipeline (nurture.engine.delivery.pipeline): each message recorded just before its
call, sent on an event loop with no transaction open, uncertain answers settled
(nurture.engine.delivery.settling), and each step completed (log, effects, the enrollment's
next step) as soon as it is done, in small groups, while the next batch is claimed. The
reads and writes are a few set-based statements per batch or group.
"""

import threading
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import Connection

from nurture.channels import Channels, PermanentFailure, TemporaryFailure
from nurture.engine import actions, booking, caps, engagement, exclusive, notes, variants
from nurture.engine.complete import Job
from nurture.engine.config import LEASE, EngineConfig, worker_name
from nurture.engine.delivery import sends, settling
from nurture.engine.delivery.pipeline import Each, Pipeline
from nurture.errors import ConfigError
from nurture.rules import steps
from nurture.rules.booking import Booking, appointment_check
from nurture.rules.matching import Check, check_conditions
from nurture.settings.sections import CoachSettings
from nurture.spec.actions import NotificationConfig
from nurture.spec.steps import AnyStep
from nurture.spec.window import SendWindow
from nurture.store import batch, queries
from nurture.store.db import Store

__all__ = ["LEASE", "EngineConfig", "Report", "drain", "run_due", "settle_unknown", "worker_name"]


@dataclass
class Report:
    """What batches did besides running steps, for the daemon's log."""

    lost: int = 0
    """Enrollments whose lease was rescued while their batch worked (their sends are recorded)."""
    settled: int = 0
    """Uncertain sends the provider answered for: sent, or not there and sent again."""
    held: int = 0
    """Uncertain sends left unknown: waiting for a later settle or `nurture enrollments settle`."""
    deferred: int = 0
    """Steps a frequency cap or an exclusive sequence made wait (each runs later, once)."""
    deferrals: list[Job] | None = None
    """When a list: the deferred and excluded jobs themselves (the dry run shows them)."""

    def add(self, jobs: list[Job], lost: int) -> None:
        self.lost += lost
        self.settled += sum(1 for job in jobs if (job.detail or {}).get("settled"))
        self.held += sum(1 for job in jobs if job.status == "unknown")
        waiting = [job for job in jobs if job.status in ("deferred", "excluded")]
        self.deferred += len(waiting)
        if self.deferrals is not None:
            self.deferrals += waiting


Clock = Callable[[], datetime]
ClaimRows = Callable[[Connection, datetime], queries.ClaimedBatch]


def drain(
    store: Store,
    now: datetime | Clock,
    config: EngineConfig,
    channels: Channels,
    report: Report | None = None,
    stopping: threading.Event | None = None,
    each: Each | None = None,
) -> int:
    """Run the steps due at `now` (a time, or a clock read before each claim), batch after
    batch, until none is left or `stopping` is set; how many steps ran (`each` hears each
    write's)."""
    clock = now if callable(now) else lambda: now
    return _flow(store, clock, _due(config), config, channels, report, stopping=stopping, each=each)


def run_due(
    store: Store,
    now: datetime,
    config: EngineConfig,
    channels: Channels,
    report: Report | None = None,
) -> int:
    """Claim up to `config.batch` due enrollments, run one step of each, complete them; how many."""
    return _flow(store, lambda: now, _due(config), config, channels, report, once=True)


def _due(config: EngineConfig) -> ClaimRows:
    """The claim of the steps due at a time, as `config` leases them."""

    def claim(connection: Connection, at: datetime) -> queries.ClaimedBatch:
        return queries.claim_batch(connection, at, at + config.lease, config.worker, config.batch)

    return claim


def settle_unknown(
    store: Store,
    now: datetime,
    config: EngineConfig,
    channels: Channels,
    before: datetime,
    report: Report | None = None,
    once: bool = True,
    stopping: threading.Event | None = None,
) -> int:
    """Settle up to `config.batch` unknown enrollments untouched since `before` whose channel
    can ask its provider (or whose send the log shows): sent, sent again, or still held; how
    many. Batch after batch until none is left without `once`."""
    types = settling.action_types(channels)

    def claim(connection: Connection, at: datetime) -> queries.ClaimedBatch:
        until, worker, size = at + config.lease, config.worker, config.batch
        rows = queries.claim_unknown(
            connection, at, until, worker, size, before=before, types=types
        )
        return queries.read_batch(connection, rows)

    return _flow(store, lambda: now, claim, config, channels, report, once, stopping)


def _flow(
    store: Store,
    clock: Clock,
    claim_rows: ClaimRows,
    config: EngineConfig,
    channels: Channels,
    report: Report | None,
    once: bool = False,
    stopping: threading.Event | None = None,
    each: Each | None = None,
) -> int:
    """The claimed batches through the send pipeline; how many steps ran."""
    run = _Run.of(config, channels, report)

    def claim() -> tuple[datetime, list[Job]] | None:
        now = clock()
        with sends.serialized(store), store.begin(immediate=True) as connection:
            claimed = claim_rows(connection, now)
            if not claimed.rows:
                return None
            jobs = _prepare(connection, store.url, claimed)
            exclusive.place(connection, store.url, jobs, now)
            engagement.load(connection, jobs, now, config.scoring)
            if config.caps:  # counted in this transaction (no commit more): decided first
                _decide_all(jobs, run, now)
                caps.hold(connection, jobs, config.caps, now, config.default_zone)
        if not config.caps:  # rendering needs no transaction
            _decide_all(jobs, run, now)
        return now, jobs

    pipeline = Pipeline(store, config, channels, run.report, clock)
    return pipeline.run(claim, once=once, stopping=stopping, each=each)


@dataclass(frozen=True)
class _Run:
    """One drain: its config, its channels, the coach (its defaults when empty), its report."""

    config: EngineConfig
    channels: Channels
    coach: dict[str, Any]
    report: Report
    hours: SendWindow | None = None
    """The coach's working hours: a notification step outside them waits (nurture.engine.notes)."""

    @classmethod
    def of(cls, config: EngineConfig, channels: Channels, report: Report | None) -> "_Run":
        coach = config.coach or CoachSettings().model_dump()
        hours = coach.get("working_hours")
        window = SendWindow.model_validate(hours) if hours else None
        return cls(config, channels, coach, report or Report(), window)


def _decide_all(jobs: list[Job], run: _Run, now: datetime) -> None:
    """What each new step does; for an uncertain send found at claim, the message to ask about."""
    for job in jobs:
        fresh, step = job.status == "done", job.step
        if step is None or not (fresh or job.status == "unknown"):  # a job "done" has its step
            continue
        context = (
            actions.context(job.lead, job.funnel, job.sequence, step, run.coach, now)
            if step.action_type in actions.RENDERS
            else {}
        )
        if context:
            _appointment_context(job, context, run, now)
        if fresh:
            track = (
                engagement.tracker(run.config.tracking, job)
                if step.action_type in actions.CHANNEL_OF
                else None
            )
            if track is not None:
                context["link"] = track
            _decide(job, step, context, now, run.config)
            if track is not None and job.message is not None and run.config.tracking:
                job.message = engagement.tracked(
                    job.message, job.spec, track, run.config.tracking, job
                )
            _hold_for_working_hours(job, step, context, now, run)
        elif step.action_type in actions.CHANNEL_OF:
            with suppress(PermanentFailure):  # no message to ask the provider about: held
                job.message = actions.message(step, job.lead, context, job.key)


def _hold_for_working_hours(
    job: Job, step: AnyStep, context: dict[str, Any], now: datetime, run: _Run
) -> None:
    """A notification step outside the coach's working hours (not urgent) sends nothing now: its
    note waits in the store for the next working moment, and the sequence goes on."""
    config = step.action_config
    if job.message is None or not isinstance(config, NotificationConfig) or config.urgent:
        return
    opens = notes.working_from(now, run.hours, run.config.default_zone)
    if opens > now:
        job.message = None
        job.effect = actions.held_notification(step, job.lead, context, now, opens)
        job.note(held_until=opens.isoformat())


def _appointment_context(job: Job, context: dict[str, Any], run: _Run, now: datetime) -> None:
    """`booking_link` (signed when a template prints it) and `appointment`, for the job."""
    booking = run.config.booking
    if booking is not None:
        context["booking_link"] = _Link(booking, job.claim.id, now)
    if job.appointment is not None:
        zone = job.lead.timezone or run.config.default_zone
        context["appointment"] = actions.appointment_view(job.appointment, zone)


@dataclass(frozen=True)
class _Link:
    """A booking link, signed only if a template prints it."""

    booking: Booking
    enrollment_id: int
    now: datetime

    def __str__(self) -> str:
        return self.booking.link(self.enrollment_id, self.now)


def rescue_leases(store: Store, now: datetime) -> int:
    """Expired leases (a daemon died or stalled) back to active; how many."""
    with store.begin(immediate=True) as connection:
        return queries.rescue(connection, now)


def next_due(store: Store) -> datetime | None:
    """When the next active enrollment is due, or None."""
    with store.begin() as connection:
        return queries.next_due(connection)


def release(store: Store, worker: str) -> int:
    """Give back this worker's leases (on shutdown); how many."""
    with store.begin(immediate=True) as connection:
        return queries.release(connection, worker)


CRASHED = sends.uncertain("its daemon stopped, or lost its lease, before the answer")


def _prepare(connection: Connection, url: str, got: queries.ClaimedBatch) -> list[Job]:
    """Read what the batch needs besides its claim, its leads and its recorded attempts (in
    the claim's transaction), then place each job."""
    claimed, leads, recorded = got
    funnels = batch.funnels(connection, (lead.funnel_id for lead in leads.values()))
    sequences = batch.sequences(connection, (row.sequence_id for row in claimed))

    def load(sequence_id: int, version: int) -> dict[str, Any]:
        return batch.definition(connection, sequence_id, version)

    positions: dict[tuple[int, int, int, str | None], steps.Position] = {}

    def place(row: queries.Claimed, current_version: int) -> steps.Position:
        """Where the row stands; rows at the same step of the same versions share the answer."""
        key = (row.sequence_id, row.version, current_version, row.step_id)
        if key not in positions:
            old = steps.cached_spec(url, row.sequence_id, row.version, load)
            current = steps.cached_spec(url, row.sequence_id, current_version, load)
            positions[key] = steps.locate(old, current, current_version, row.step_id)
        return positions[key]

    jobs: list[Job] = []
    for row in claimed:
        sequence, lead = sequences[row.sequence_id], leads[row.lead_id]
        job = _job(row, lead, place(row, _target(sequence, row.version)))
        job.sequence, job.funnel = sequence, funnels.get(lead.funnel_id or 0)
        if job.step is not None and (row.variants or job.step.field_value("variants")):
            spec_of = partial(steps.cached_spec, url, row.sequence_id, load=load)
            job.step, job.variant = variants.pick(
                job.step, row.lead_id, sequence.slug, row.variants, spec_of
            )
        execution = recorded.get((row.id, row.step_id, row.attempt))
        if execution is not None:
            _adopt(job, execution)
        jobs.append(job)
    _read_appointments(connection, jobs)
    return jobs


def _read_appointments(connection: Connection, jobs: list[Job]) -> None:
    """The appointment of each job whose step is timed from it or asks about it."""
    asking = [job for job in jobs if job.step is not None and _asks_appointment(job.step)]
    for job in asking:
        job.appointment = booking.of_enrollment(connection, job.claim.id)


def _asks_appointment(step: AnyStep) -> bool:
    conditions = step.conditions
    return bool(step.relative_to) or (conditions is not None and conditions.appointment is not None)


def _target(sequence: batch.Named, version: int) -> int:
    """The version an enrollment runs: the current one, or a canary's for leads on it."""
    canary = sequence.canary_version
    return (
        canary
        if canary is not None and version > sequence.current_version
        else sequence.current_version
    )


def _adopt(job: Job, execution: batch.Recorded) -> None:
    """Take over an attempt recorded already (by a crashed daemon, or under a lease since lost):
    its outcome, or its send whose fate is unclear, to settle; it never collides, never resends."""
    job.execution_id, job.sent_after = execution.id, execution.started_at
    job.detail = dict(execution.detail) if execution.detail else None
    if execution.status in ("sending", "unknown"):
        job.status, job.error = "unknown", execution.error or CRASHED
    else:
        job.status, job.error = execution.status, execution.error
        job.provider_id = execution.provider_id
        job.note(settled="recorded already, under a lease since lost")


def _job(row: queries.Claimed, lead: batch.LeadRow, position: steps.Position) -> Job:
    """The step to run, or a skip when the current version removed it (or never had it)."""
    spec, step, version = position.spec, position.step, position.version
    if position.removed is not None:
        job = Job(row, lead, spec, version, position.removed, step, status="skipped")
        job.error = f"step removed in version {version}"
    elif step is None:
        job = Job(row, lead, spec, version, None, None, status="skipped")
        job.error = f"step {row.step_id!r} is not in version {version}"
    else:
        job = Job(row, lead, spec, version, step, position.after)
    return job


def _decide(job: Job, step: AnyStep, context: dict[str, Any], now: datetime, config: Any) -> None:
    """What the step does now: skip, send a message, or an effect to write at completion."""
    lead = job.lead
    checks = check_conditions(step.conditions, lead, job.engagement)
    failed = [check for check in checks if not check.passed]
    failed += _appointment_checks(job, step)
    if job.engagement is not None and not failed and step.conditions is not None:
        job.note(held=[str(c) for c in checks if c.condition in step.conditions.engagement()])
    channel = actions.CHANNEL_OF.get(step.action_type)
    if not step.active:
        job.status, job.error = "skipped", "step is inactive"
    elif failed:
        job.status, job.error = "skipped", "conditions not met: " + "; ".join(map(str, failed))
        job.detail = {"checks": [str(check) for check in failed]}
    elif channel and channel != "notification" and actions.opted_out(lead, channel):
        job.status, job.error = "skipped", f"lead opted out of {channel}"
    else:
        try:
            if channel:
                job.message = actions.message(step, lead, context, job.key)
            elsewhere = _busy(step, config, now)
            job.effect = actions.effect(
                step, lead, context, now, config.default_zone, config.booking, elsewhere
            )
            if step.field_value("wait_for") is not None:
                engagement.waited(job, step)
        except PermanentFailure as error:
            job.status, job.error, job.message = "failed", str(error), None
        except TemporaryFailure as error:  # the coach's calendar: retried, never booked blind
            job.status, job.error, job.message = "retry", str(error), None


def _busy(step: AnyStep, config: Any, now: datetime) -> list[Any]:
    """The coach's calendar's busy times, for a step that books the first free slot."""
    mode = step.action_config.field_value("mode")
    if mode != "auto" or config.calendars is None:
        return []
    try:
        return list(config.calendars.busy(now))
    except ConfigError as error:  # a refused password: the step waits for it to be fixed
        raise TemporaryFailure(str(error)) from None


def _appointment_checks(job: Job, step: AnyStep) -> list[Check]:
    """A step's `appointment:` condition; a step timed from a cancelled call without one."""
    status = job.appointment.status if job.appointment is not None else None
    check = appointment_check(step.conditions, status)
    if check is not None:
        return [] if check.passed else [check]
    wanted = ("booked",) if step.before else ("booked", "attended", "no_show")
    if step.relative_to and status not in wanted:
        return [Check("appointment", " or ".join(wanted), status or "none", False)]
    return []
