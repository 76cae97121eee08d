"""A claimed enrollment's step and its outcome (a Job), and the completion that records a batch.

Completion is one transaction per batch. It starts with the enrollments' next states, each
update guarded by its lease (`status = 'running' AND lease_owner = :worker`, RETURNING the ids
it changed): a conversion, stop or pause that happened while the step ran wins, and that step's
effects and log row are dropped. A send that happened is recorded whatever the enrollment
became meanwhile; a row whose lease was lost (rescued by another daemon) is counted, never an
error.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection

from nurture.channels import OutgoingMessage
from nurture.engine import actions, booking
from nurture.leads import consent
from nurture.rules.engagement import Engagement
from nurture.rules.schedule import step_due
from nurture.spec.models import SequenceSpec
from nurture.spec.steps import AnyStep
from nurture.store import batch, queries
from nurture.store.tables import OutboxMessage


@dataclass(slots=True)
class Job:
    """One claimed enrollment, the step it runs, and (as it goes) the outcome."""

    claim: Any  # a queries.Claimed (settling: a row with its columns)
    lead: Any  # a batch.LeadRow (settling: a row with its columns)
    spec: SequenceSpec
    version: int
    step: AnyStep | None
    next: AnyStep | None
    # done, sent, skipped, failed, retry, unknown; untried: its message was not sent (the store
    # failed, or the lease was lost, before its `sending` record): back to active as claimed;
    # deferred: held by a frequency cap or an exclusive sequence, active again at
    # `deferred_until`, `error` saying why; excluded: ended, another exclusive sequence won.
    status: str = "done"
    error: str | None = None
    detail: dict[str, Any] | None = None
    message: OutgoingMessage | None = None
    effect: actions.Effect | None = None
    execution_id: int | None = None
    provider_id: str | None = None
    outbox: dict[str, Any] | None = None
    retry_after: float | None = None  # the provider's Retry-After, in seconds
    sequence: batch.Named | None = None
    funnel: batch.Named | None = None
    sent_after: datetime | None = None  # when its `sending` was recorded, for a settle
    engagement: Engagement | None = None  # the lead's events, for a step that reads them
    waited_since: datetime | None = None  # a wait for an event: when it began
    appointment: Any = None  # its enrollment's appointment row, for steps timed from it
    deferred_until: datetime | None = None
    variant: str | None = None  # the variant of its step it runs (nurture.engine.variants)
    step_id: str = field(init=False)
    """The id of its step (of the claim's when it has none; "-" for none at all)."""

    def __post_init__(self) -> None:
        self.step_id = self.step.key if self.step else self.claim.step_id or "-"

    @property
    def key(self) -> str:
        """The idempotency key: enrollment, step, attempt."""
        return f"{self.claim.id}:{self.step_id}:{self.attempt}"

    @property
    def attempt(self) -> int:
        return self.claim.attempt

    @property
    def channel(self) -> str | None:
        """The kind of message it sends (sms, email...), or None."""
        return self.message.channel if self.message is not None else None

    def note(self, **detail: Any) -> None:
        self.detail = (self.detail or {}) | detail


def execution_row(
    job: Job, now: datetime, status: str, finished: datetime | None
) -> dict[str, Any]:
    """The execution log row of a job."""
    claim = job.claim
    return {
        "enrollment_id": claim.id,
        "lead_id": claim.lead_id,
        "sequence_id": claim.sequence_id,
        "version": job.version,
        "step_id": job.step_id,
        "action_type": job.step.action_type if job.step else "none",
        "attempt": job.attempt,
        "status": status,
        "due_at": claim.next_run_at,
        "started_at": now,
        "finished_at": finished,
        "error": job.error,
        "provider_id": job.provider_id,
        "detail": job.detail,
        "variant": job.variant,
    }


def complete(connection: Connection, jobs: list[Job], worker: str, now: datetime, zone: str) -> int:
    """Record a batch: executions, effects, outbox rows, and each enrollment's next state; how
    many of its enrollments this worker no longer held (their sends are recorded all the same)."""
    outcomes = [(job.status, job.error, job.detail) for job in jobs]
    states = [transition(job, now, zone) for job in jobs]
    ours = queries.update_enrollments(connection, states, worker)
    kept = []
    for job, (status, error, detail) in zip(jobs, outcomes, strict=True):
        if job.claim.id in ours:
            kept.append(job)
        else:  # lost: its outcome as the step left it, not as a transition read it
            job.status, job.error, job.detail = status, error, detail
    started = [job for job in jobs if job.execution_id is not None]
    queries.finish_executions(connection, [finished_row(job, now) for job in started])
    new = [job for job in kept if job.execution_id is None and job.status not in UNLOGGED]
    ids = queries.insert_executions(
        connection, [execution_row(job, now, job.status, now) for job in new]
    )
    for job, execution_id in zip(new, ids, strict=True):
        job.execution_id = execution_id
    for job in kept:
        if (
            job.effect is not None
            and job.execution_id is not None
            and job.status in ("done", "sent")
        ):
            job.effect(connection, job.execution_id)
    relative = [
        (job.claim.id, job.next)
        for job in kept
        if job.next is not None and job.next.relative_to and _advanced(job)
    ]
    if relative:
        booking.place_relative(connection, relative, now, zone)
    queries.insert_rows(connection, OutboxMessage, _outbox_rows(jobs, now))
    consent.opt_out_many(connection, _unsubscribed(jobs), now, "provider", UNSUBSCRIBED)
    return len(jobs) - len(kept)


def _advanced(job: Job) -> bool:
    """Whether the job moved its enrollment on to its next step."""
    return (job.detail or {}).get("next", {}).get("step") == getattr(job.next, "id", None)


UNLOGGED = frozenset({"untried", "deferred", "excluded"})
"""Outcomes that ran no step: no execution row (the enrollment's row says why)."""
UNSUBSCRIBED = "the provider refused the message: the recipient unsubscribed"


def _unsubscribed(jobs: list[Job]) -> list[tuple[int, str]]:
    """(lead, channel) of the sends a provider refused because the lead unsubscribed there."""
    return [
        (job.claim.lead_id, job.message.channel)
        for job in jobs
        if job.message is not None and (job.detail or {}).get("unsubscribed")
    ]


def _outbox_rows(jobs: list[Job], now: datetime) -> list[dict[str, Any]]:
    """The outbox rows of the sends recorded (a dropped job's transactional send never happened)."""
    return [
        job.outbox | {"execution_id": job.execution_id, "created_at": now}
        for job in jobs
        if job.outbox is not None and job.execution_id is not None
    ]


def finished_row(job: Job, now: datetime) -> dict[str, Any]:
    """A started execution's outcome, as `queries.finish_executions` writes it."""
    return {
        "_id": job.execution_id,
        "status": job.status,
        "finished_at": now,
        "error": job.error,
        "provider_id": job.provider_id,
        "detail": job.detail,
    }


def transition(job: Job, now: datetime, zone: str) -> dict[str, Any]:
    """The enrollment's next state: retry, the next step, the end, failed or unknown."""
    claim, spec = job.claim, job.spec
    state = {
        "_id": claim.id,
        "version": job.version,
        "step_id": job.step_id,
        "status": "active",
        "attempts": 0,
        "next_run_at": None,
        "lease_owner": None,
        "lease_expires_at": None,
        "updated_at": now,
        "finished_at": None,
        "exit_reason": None,
    }
    if job.status in ("untried", "unknown"):  # where it was: the same step and time
        state.update(version=claim.version, step_id=claim.step_id, next_run_at=claim.next_run_at)
        if job.status == "untried":
            state["attempts"] = job.attempt - 1
        else:
            state.update(status="unknown", attempts=job.attempt, exit_reason=job.error)
        return state
    if job.status in ("deferred", "excluded"):
        return state | _held(job, now)
    if job.status == "retry" and job.attempt <= spec.max_retries:
        retry_at = now + spec.retry_delay * spec.retry_backoff ** (job.attempt - 1)
        if job.retry_after:  # never sooner than the provider asked
            retry_at = max(retry_at, now + timedelta(seconds=job.retry_after))
        job.note(retry_at=retry_at.isoformat())
        state.update(attempts=job.attempt, next_run_at=retry_at)
        return state
    if job.status == "retry":
        job.status = "failed"
        job.error = f"{job.error} (gave up after {job.attempt} attempts)"
    if job.status == "failed" and spec.failure_policy == "stop":
        reason = f"step {job.step_id} failed: {job.error}"
        state.update(status="failed", finished_at=now, exit_reason=reason)
    elif job.step is not None and job.step.stop and job.status != "skipped":
        reason = f"step {job.step.id} ends the sequence"
        state.update(status="completed", finished_at=now, exit_reason=reason)
    else:
        state.update(_advance(job, now, zone))
    return state


def _held(job: Job, now: datetime) -> dict[str, Any]:
    """Deferred: the same step later, its attempt not used; excluded: the end."""
    claim = job.claim
    if job.status == "excluded":
        return {"status": "stopped", "finished_at": now, "exit_reason": job.error}
    return {
        "version": claim.version,
        "step_id": claim.step_id,
        "attempts": job.attempt - 1,
        "next_run_at": job.deferred_until,
        "exit_reason": job.error,
    }


def _advance(job: Job, now: datetime, zone: str) -> dict[str, Any]:
    if job.next is None:
        return {"status": "completed", "finished_at": now, "exit_reason": "completed"}
    if job.next.relative_to:  # timed from its appointment once completion has it booked
        job.note(next={"step": job.next.id, "at": None, "reasons": ["timed from the appointment"]})
        return {"step_id": job.next.id, "next_run_at": None}
    slot = step_due(now, job.next, job.spec, job.lead.timezone, zone)
    noted = _next_noted(job.next.id, slot.at, slot.reasons)
    # most steps note nothing else: the batch's jobs share one detail (and its JSON is made
    # once, bulk.json_column); job.note never changes a detail in place
    job.detail = noted if job.detail is None else job.detail | noted
    return {"step_id": job.next.id, "next_run_at": slot.at}


@lru_cache(maxsize=1024)  # a batch's enrollments mostly go on to the same step at the same time
def _next_noted(step: str, at: datetime, reasons: tuple[str, ...]) -> dict[str, Any]:
    """The detail of a step that scheduled the next: which, when, why then (shared: read only)."""
    return {"next": {"step": step, "at": at.isoformat(), "reasons": list(reasons)}}
