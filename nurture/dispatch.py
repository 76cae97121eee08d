"""The engine: claim due enrollments, run their steps, complete them (DESIGN.md §4).

    while run_due(store, now, worker="w1", channels=channels_for("outbox")):
        pass

A batch goes through at most three short transactions and none is open during a send: the
claim (lease the due enrollments, read their leads, funnels and sequences), the `sending`
record (before any call to a provider; a transactional channel such as the outbox needs none),
then the sends run concurrently, and one completion writes the log, the effects and each
enrollment's next step. Each is a few set-based statements for the whole batch.
"""

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row

from nurture import actions, steps
from nurture.channels import Channels, PermanentFailure, TemporaryFailure, is_transactional
from nurture.completion import Job, complete, execution_row
from nurture.matching import check_conditions
from nurture.settings import CoachSettings
from nurture.store import queries
from nurture.store.db import Store


def run_due(
    store: Store,
    now: datetime,
    *,
    worker: str,
    channels: Channels,
    batch: int = 500,
    senders: int = 8,
    lease: timedelta = timedelta(minutes=5),
    default_zone: str = "UTC",
    coach: dict[str, Any] | None = None,
) -> int:
    """Claim up to `batch` due enrollments, run one step of each, complete them; how many.

    `coach` is what templates read as `coach` (settings.coach; its defaults when empty).
    """
    with store.begin(immediate=True) as connection:
        claimed = queries.claim(connection, now, now + lease, worker, batch)
        if not claimed:
            return 0
        jobs = _prepare(connection, store.url, claimed)
    coach = coach or CoachSettings().model_dump()
    for job in jobs:
        if job.status == "done":
            _decide(job, actions.context(job.lead, job.funnel, job.sequence, job.step, coach, now),
                    now, default_zone)  # fmt: skip
    _record_sending(store, jobs, channels, now)
    _send_all(jobs, channels, senders)
    with store.begin(immediate=True) as connection:
        complete(connection, jobs, worker, now, default_zone)
    return len(jobs)


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


UNKNOWN = "a send may have happened before a crash: check the provider, then resume or stop"


def _prepare(connection: Connection, url: str, claimed: list[Row]) -> list[Job]:
    """Read what the batch needs at once (in the claim's transaction), then place each job."""
    leads = queries.leads(connection, (row.lead_id for row in claimed))
    funnels = queries.funnels(connection, (lead.funnel_id for lead in leads.values()))
    sequences = queries.sequences(connection, (row.sequence_id for row in claimed))
    in_flight = queries.sending(connection, [(row.id, row.step_id) for row in claimed])

    def load(sequence_id: int, version: int) -> dict[str, Any]:
        return queries.definition(connection, sequence_id, version)

    positions: dict[tuple[int, int, int, str | None], steps.Position] = {}

    def place(row: Row, current_version: int) -> steps.Position:
        """Where the row stands; rows at the same step of the same versions share the answer."""
        key = (row.sequence_id, row.version, current_version, row.step_id)
        if key not in positions:
            old = steps.spec_of(url, row.sequence_id, row.version, load)
            current = steps.spec_of(url, row.sequence_id, current_version, load)
            positions[key] = steps.locate(old, current, current_version, row.step_id)
        return positions[key]

    jobs = []
    for row in claimed:
        sequence, lead = sequences[row.sequence_id], leads[row.lead_id]
        job = _job(row, lead, place(row, sequence.current_version))
        job.sequence, job.funnel = sequence, funnels.get(lead.funnel_id)
        if (row.id, row.step_id) in in_flight:
            job.status, job.error = "unknown", UNKNOWN
            job.execution_id = in_flight[(row.id, row.step_id)]
        jobs.append(job)
    return jobs


def _job(row: Row, lead: Row, position: steps.Position) -> Job:
    """The step to run, or a skip when the current version removed it (or never had it)."""
    spec, step, version = position.spec, position.step, position.version
    if position.removed is not None:
        job = Job(row, lead, spec, version, position.removed, step, status="skipped")
        job.error = f"step removed in version {version}"
    elif step is None:
        job = Job(row, lead, spec, version, None, None, status="skipped")
        job.error = f"step {row.step_id!r} is not in version {version}"
    else:
        job = Job(row, lead, spec, version, step, steps.next_step(spec, step.id))
    return job


def _decide(job: Job, context: dict[str, Any], now: datetime, zone: str) -> None:
    """What the step does now: skip, send a message, or an effect to write at completion."""
    step, lead = job.step, job.lead
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


def _record_sending(store: Store, jobs: list[Job], channels: Channels, now: datetime) -> None:
    """Commit a `sending` execution for every message before any is sent (the idempotency key).

    A transactional channel's message takes effect only when the completion commits, so there
    is no send to record beforehand.
    """
    sends = [job for job in jobs if job.message is not None and not _inline(job, channels)]
    if not sends:
        return
    with store.begin(immediate=True) as connection:
        rows = [execution_row(job, now, "sending", None) for job in sends]
        ids = queries.insert_executions(connection, rows)
    for job, execution_id in zip(sends, ids, strict=True):
        job.execution_id = execution_id
        job.message = replace(job.message, execution_id=execution_id)


def _inline(job: Job, channels: Channels) -> bool:
    return is_transactional(channels[job.message.channel])


def _send_all(jobs: list[Job], channels: Channels, senders: int) -> None:
    """Send every message, `senders` at a time: each sender takes the next message when free.

    Transactional channels only build a row: they run inline, not in the pool.
    """
    pooled = []
    for job in (job for job in jobs if job.message is not None):
        if _inline(job, channels):
            _send(job, channels)
        else:
            pooled.append(job)
    if len(pooled) <= 1 or senders <= 1:
        for job in pooled:
            _send(job, channels)
        return
    pending, lock = iter(pooled), threading.Lock()

    def sender() -> None:
        while True:
            with lock:
                job = next(pending, None)
            if job is None:
                return
            _send(job, channels)

    workers = min(senders, len(pooled))
    pool = _pool(senders)
    for future in [pool.submit(sender) for _ in range(workers)]:
        future.result()


_pools: dict[int, ThreadPoolExecutor] = {}


def _pool(size: int) -> ThreadPoolExecutor:
    """One pool of senders per size for the process: threads are not started per batch."""
    if size not in _pools:
        _pools[size] = ThreadPoolExecutor(max_workers=size, thread_name_prefix="send")
    return _pools[size]


def _send(job: Job, channels: Channels) -> None:
    try:
        result = channels[job.message.channel].send(job.message)
    except PermanentFailure as error:
        job.status, job.error = "failed", str(error) or "permanent failure"
        if error.unsubscribed:
            job.note(unsubscribed=True)
    except TemporaryFailure as error:
        job.status, job.error, job.retry_after = "retry", _describe(error), error.retry_after
    except Exception as error:  # a temporary failure, or a channel bug: retried, never lost
        job.status, job.error = "retry", _describe(error)
    else:
        job.status, job.provider_id, job.outbox = "sent", result.provider_id, result.outbox


def _describe(error: Exception) -> str:
    if isinstance(error, TemporaryFailure):
        return str(error) or "temporary failure"
    return f"{type(error).__name__}: {error}"
