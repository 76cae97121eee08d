"""The engine: claim due enrollments, run their steps, complete them (DESIGN.md §4).

    drain(store, now, EngineConfig(worker="w1"), channels_for("outbox", store))

A batch: the claim (lease the due enrollments; read their leads, funnels, sequences and any
execution recorded already for the attempt each runs), then the sends (nurture.engine.delivery.sends: each one
recorded just before its call and just after, no transaction open during a call), the settling
of uncertain sends (nurture.engine.delivery.settling), and one completion that writes the log, the effects and
each enrollment's next step. Its leases are renewed while it works (nurture.engine.delivery.leases). The reads
and writes are a few set-based statements for the whole batch.
"""

import os
import socket
import threading
import uuid
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row

from nurture.channels import Channels, PermanentFailure
from nurture.engine import actions
from nurture.engine.complete import Job, complete
from nurture.engine.delivery import leases, sends, settling
from nurture.rules import steps
from nurture.rules.matching import check_conditions
from nurture.settings import CoachSettings
from nurture.spec.models import AnyStep
from nurture.store import queries
from nurture.store.db import STORE_ERRORS, Store

LEASE = timedelta(minutes=5)


def worker_name() -> str:
    """host:pid:random, unique across machines and restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class Report:
    """What batches did besides running steps, for the daemon's log."""

    lost: int = 0
    """Enrollments whose lease was rescued while their batch worked (their sends are recorded)."""
    settled: int = 0
    """Uncertain sends the provider answered for: sent, or not there and sent again."""
    held: int = 0
    """Uncertain sends left unknown: waiting for a later settle or `nurture enrollments settle`."""

    def add(self, jobs: list[Job], lost: int) -> None:
        self.lost += lost
        self.settled += sum(1 for job in jobs if (job.detail or {}).get("settled"))
        self.held += sum(1 for job in jobs if job.status == "unknown")


@dataclass(frozen=True)
class EngineConfig:
    """How the engine's batches run: who holds them, how many at once, for how long, in which
    zone, with which coach; `nurture run --once`, the daemon and the dry run each hold one."""

    worker: str = field(default_factory=worker_name)
    batch: int = 500
    """Enrollments claimed per batch."""
    senders: int = 8
    """Sends at once within a batch."""
    lease: timedelta = LEASE
    default_zone: str = "UTC"
    coach: dict[str, Any] = field(default_factory=dict)
    """What templates read as `coach` (settings.coach; its defaults when empty)."""


Clock = Callable[[], datetime]


def drain(
    store: Store,
    now: datetime | Clock,
    config: EngineConfig,
    channels: Channels,
    report: Report | None = None,
    stopping: threading.Event | None = None,
    each: Callable[[int], None] | None = None,
) -> int:
    """Run batch after batch of the steps due at `now` (a time, or a clock read before each
    batch) until none is left or `stopping` is set; how many steps ran (`each` hears each batch's)."""
    clock = now if callable(now) else lambda: now
    return _repeat(lambda: run_due(store, clock(), config, channels, report), stopping, each)


def settle_held(
    store: Store,
    now: datetime,
    config: EngineConfig,
    channels: Channels,
    before: datetime,
    report: Report | None = None,
    stopping: threading.Event | None = None,
) -> int:
    """settle_unknown batch after batch until none is left or `stopping` is set; how many."""
    return _repeat(lambda: settle_unknown(store, now, config, channels, before, report), stopping)


def _repeat(
    batch: Callable[[], int],
    stopping: threading.Event | None,
    each: Callable[[int], None] | None = None,
) -> int:
    total = 0
    while not (stopping and stopping.is_set()):
        done = batch()
        if done == 0:
            break
        total += done
        if each:
            each(done)
    return total


def run_due(
    store: Store,
    now: datetime,
    config: EngineConfig,
    channels: Channels,
    report: Report | None = None,
) -> int:
    """Claim up to `config.batch` due enrollments, run one step of each, complete them; how many."""

    def claim(connection: Connection) -> list[Row]:
        return queries.claim(connection, now, now + config.lease, config.worker, config.batch)

    return _batch(store, now, claim, _Run.of(config, channels, report))


def settle_unknown(
    store: Store,
    now: datetime,
    config: EngineConfig,
    channels: Channels,
    before: datetime,
    report: Report | None = None,
) -> int:
    """Settle up to `config.batch` unknown enrollments untouched since `before` whose channel can
    ask its provider (or whose send the log shows): sent, sent again, or still held; how many."""
    types = settling.action_types(channels)

    def claim(connection: Connection) -> list[Row]:
        until, worker, batch = now + config.lease, config.worker, config.batch
        return queries.claim_unknown(
            connection, now, until, worker, batch, before=before, types=types
        )

    return _batch(store, now, claim, _Run.of(config, channels, report))


@dataclass(frozen=True)
class _Run:
    """One batch: its config, its channels, the coach (its defaults when empty), its report."""

    config: EngineConfig
    channels: Channels
    coach: dict[str, Any]
    report: Report

    @classmethod
    def of(cls, config: EngineConfig, channels: Channels, report: Report | None) -> "_Run":
        coach = config.coach or CoachSettings().model_dump()
        return cls(config, channels, coach, report or Report())


def _batch(store: Store, now: datetime, claim: Callable[[Connection], list[Row]], run: _Run) -> int:
    with store.begin(immediate=True) as connection:
        claimed = claim(connection)
        if not claimed:
            return 0
        jobs = _prepare(connection, store.url, claimed)
    ids, config = [row.id for row in claimed], run.config
    try:
        with leases.renewed(store, ids, config.worker, now, config.lease):
            _decide_all(jobs, run, now)
            sends.send_all(
                store, jobs, run.channels, worker=config.worker, senders=config.senders, now=now
            )
            settling.settle_all(jobs, run.channels, config.senders)
            with store.begin(immediate=True) as connection:
                lost = complete(connection, jobs, config.worker, now, config.default_zone)
    except STORE_ERRORS:
        _give_back(store, ids, config.worker)
        raise
    run.report.add(jobs, lost)
    return len(jobs)


def _give_back(store: Store, ids: list[int], worker: str) -> None:
    """Release a failed batch's leases at once where the store allows (else they expire):
    what it recorded already is found by the next claim."""
    try:
        with store.begin(immediate=True) as connection:
            queries.release(connection, worker, ids)
    except STORE_ERRORS:
        pass


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
        if fresh:
            _decide(job, step, context, now, run.config.default_zone)
        elif step.action_type in actions.CHANNEL_OF:
            with suppress(PermanentFailure):  # no message to ask the provider about: held
                job.message = actions.message(step, job.lead, context, job.key)


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


def _prepare(connection: Connection, url: str, claimed: list[Any]) -> list[Job]:
    """Read what the batch needs at once (in the claim's transaction), then place each job
    (`claimed`: the claim's queries.Claimed tuples)."""
    leads = queries.leads(connection, (row.lead_id for row in claimed))
    funnels = queries.funnels(connection, (lead.funnel_id for lead in leads.values()))
    sequences = queries.sequences(connection, (row.sequence_id for row in claimed))
    recorded = queries.attempted(
        connection, [(row.id, row.step_id, row.attempt) for row in claimed]
    )

    def load(sequence_id: int, version: int) -> dict[str, Any]:
        return queries.definition(connection, sequence_id, version)

    positions: dict[tuple[int, int, int, str | None], steps.Position] = {}

    def place(row: queries.Claimed, current_version: int) -> steps.Position:
        """Where the row stands; rows at the same step of the same versions share the answer."""
        key = (row.sequence_id, row.version, current_version, row.step_id)
        if key not in positions:
            old = steps.cached_spec(url, row.sequence_id, row.version, load)
            current = steps.cached_spec(url, row.sequence_id, current_version, load)
            positions[key] = steps.locate(old, current, current_version, row.step_id)
        return positions[key]

    jobs = []
    for row in claimed:
        sequence, lead = sequences[row.sequence_id], leads[row.lead_id]
        job = _job(row, lead, place(row, sequence.current_version))
        job.sequence, job.funnel = sequence, funnels.get(lead.funnel_id or 0)
        execution = recorded.get((row.id, row.step_id, row.attempt))
        if execution is not None:
            _adopt(job, execution)
        jobs.append(job)
    return jobs


def _adopt(job: Job, execution: Row) -> None:
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


def _job(row: queries.Claimed, lead: queries.LeadRow, position: steps.Position) -> Job:
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


def _decide(job: Job, step: AnyStep, context: dict[str, Any], now: datetime, zone: str) -> None:
    """What the step does now: skip, send a message, or an effect to write at completion."""
    lead = job.lead
    failed = [check for check in check_conditions(step.conditions, lead) if not check.passed]
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
            job.effect = actions.effect(step, lead, context, now, zone)
        except PermanentFailure as error:
            job.status, job.error, job.message = "failed", str(error), None
