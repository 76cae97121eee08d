"""Settling uncertain sends in bulk: `nurture enrollments settle --as sent|resend|stop`.

An enrollment is `unknown` when the send of its current step may or may not have reached the
provider (a daemon died between `sending` and `sent`, a timeout after the request went out);
that step's latest execution is `unknown` too. `plan` selects them and says what a decision
will do; `settle` carries a plan out in one transaction, on those of its enrollments that are
still `unknown` (locked first): one resumed, stopped or settled meanwhile is left alone.

- sent: the execution becomes `sent` and the enrollment moves on as a completed send does (the
  next step's delay counted from the send, then its window and holidays), or completes;
- resend: back to `active`, due now, at the same step: a new attempt (the last one counted);
- stop: the enrollment ends `stopped`.

Each decision is logged per enrollment as a control row, as nurture.engine.control logs by hand.
"""

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, false, func, select, type_coerce
from sqlmodel import Session, col

from nurture.engine.complete import Job, transition
from nurture.engine.control import CONTROL_STEP
from nurture.errors import BadFilter, NotFound
from nurture.project.sequences import find
from nurture.rules import steps
from nurture.rules.periods import Window
from nurture.rules.schedule import step_due
from nurture.rules.steps import spec_of
from nurture.spec.diagnostics import did_you_mean
from nurture.spec.steps import AnyStep
from nurture.store import batch, bulk
from nurture.store.tables import (
    Enrollment,
    Execution,
    Lead,
    Sequence,
    SequenceVersion,
    Step,
    UTCDateTime,
)

DECISIONS = ("sent", "resend", "stop")
EFFECTS = {
    "sent": "mark each send sent and move its enrollment on to the next step (or complete it)",
    "resend": "send each message again now, as a new attempt",
    "stop": "stop each enrollment: it runs no further step",
}

enrollment, execution = Enrollment.__table__, Execution.__table__
sequence, lead = Sequence.__table__, Lead.__table__


@dataclass(frozen=True)
class Filters:
    """Which uncertain sends: of a sequence, at a step, started in a window, or these enrollments."""

    sequence: str | None = None
    step: str | None = None
    window: Window = field(default_factory=Window)
    enrollments: tuple[int, ...] = ()


@dataclass(frozen=True)
class Plan:
    """The uncertain sends a decision is about, one per `unknown` enrollment, oldest first."""

    decision: str
    sends: list[Row]

    def to_dict(self) -> dict[str, Any]:
        times = [row.since for row in self.sends]
        return {
            "as": self.decision,
            "effect": EFFECTS[self.decision],
            "count": len(self.sends),
            "oldest": min(times, default=None),
            "newest": max(times, default=None),
            "groups": _groups(self.sends),
        }


@dataclass(frozen=True)
class Outcome:
    """What settling did: how many it settled, how many had changed meanwhile, where they stand."""

    decision: str
    settled: int
    gone: int
    statuses: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        keys = ("settled", "gone", "statuses")
        return {"as": self.decision} | {key: getattr(self, key) for key in keys}


def command(enrollment_id: int | None = None) -> str:
    """The command that settles one enrollment's send (every send without an id)."""
    chosen = f" --enrollment {enrollment_id}" if enrollment_id is not None else ""
    return f"nurture enrollments settle{chosen} --as sent|resend|stop"


HINT = command()


def check_decision(text: str) -> str:
    """The decision `text` names, or a BadFilter with a did-you-mean."""
    if text not in DECISIONS:
        hint = did_you_mean(text, DECISIONS) or f" (one of {', '.join(DECISIONS)})"
        raise BadFilter(f"unknown decision {text!r}{hint}", "as")
    return text


def plan(session: Session, decision: str, filters: Filters) -> Plan:
    """The `unknown` enrollments the filters select, and what `decision` will do to them."""
    decision, connection = check_decision(decision), session.connection()
    where = [filters.window.of(_since())]
    sequence_id = _sequence_id(session, filters.sequence) if filters.sequence else None
    if sequence_id is not None:
        where.append(enrollment.c.sequence_id == sequence_id)
    if filters.step is not None:
        _check_step(connection, filters.step, sequence_id)
        where.append(enrollment.c.step_id == filters.step)
    if filters.enrollments:  # an id out of the column's range names no enrollment
        ids = [i for i in filters.enrollments if 0 < i < 2**31]
        where.append(bulk.among(connection, enrollment.c.id, ids) if ids else false())
    return Plan(decision, _waiting(connection, and_(*where)))


def settle(session: Session, planned: Plan, now: datetime, by: str, zone: str) -> Outcome:
    """Carry the plan out on its enrollments still `unknown`, in the session's transaction."""
    connection = session.connection()
    ids = [row.id for row in planned.sends]
    if not ids:
        return Outcome(planned.decision, 0, 0, {})
    rows = _waiting(connection, bulk.among(connection, enrollment.c.id, ids), lock=True)
    if not rows:
        return Outcome(planned.decision, 0, len(ids), {})
    settled = {"as": planned.decision, "by": by, "at": now.isoformat(timespec="seconds")}
    states, details = _decide(connection, rows, planned.decision, now, zone)
    bulk.update(connection, execution, _executions(rows, details, planned.decision, settled))
    bulk.update(connection, enrollment, states, match={"status": "unknown"})
    _log(connection, rows, settled, now)
    counts = Counter(state["status"] for state in states)
    return Outcome(planned.decision, len(rows), len(ids) - len(rows), dict(counts))


def waiting_counts(connection: Connection) -> dict[str, int]:
    """How many sends wait to be settled, per sequence name."""
    query = (
        select(sequence.c.name, func.count())
        .join_from(enrollment, sequence, sequence.c.id == enrollment.c.sequence_id)
        .where(enrollment.c.status == "unknown")
        .group_by(sequence.c.name)
        .order_by(sequence.c.name)
    )
    return dict(connection.execute(query).all())


def _since() -> Any:
    """When the uncertain send started (the enrollment's last change when no execution says)."""
    started = func.coalesce(execution.c.started_at, enrollment.c.updated_at)
    return type_coerce(started, UTCDateTime())


_COLUMNS = (
    *(enrollment.c[name] for name in ("id", "lead_id", "sequence_id", "version", "step_id")),
    enrollment.c.next_run_at,
    enrollment.c.attempts,
    sequence.c.name.label("sequence"),
    sequence.c.current_version,
    lead.c.timezone,
    execution.c.id.label("execution_id"),
    execution.c.detail,
    execution.c.error,
)


def _waiting(connection: Connection, where: Any, *, lock: bool = False) -> list[Row]:
    """The `unknown` enrollments matching `where`, each with its step's latest unknown execution."""
    attempt = execution.alias("attempt")
    uncertain = (
        select(func.max(attempt.c.id))
        .where(attempt.c.enrollment_id == enrollment.c.id)
        .where(attempt.c.step_id == enrollment.c.step_id, attempt.c.status == "unknown")
        .correlate(enrollment)
        .scalar_subquery()
    )
    query = (
        select(*_COLUMNS, _since().label("since"))
        .select_from(
            enrollment.join(sequence, sequence.c.id == enrollment.c.sequence_id)
            .join(lead, lead.c.id == enrollment.c.lead_id)
            .outerjoin(execution, execution.c.id == uncertain)
        )
        .where(enrollment.c.status == "unknown", where)
        .order_by(_since(), enrollment.c.id)
    )
    if lock:  # a decision made meanwhile wins: rows no longer unknown drop out once locked
        query = query.with_for_update(of=enrollment)
    return list(connection.execute(query))


def _sequence_id(session: Session, name: str) -> int:
    try:
        return find(session, name, deleted=True).id
    except NotFound as error:
        raise BadFilter(str(error), "sequence") from None


def _check_step(connection: Connection, step_id: str, sequence_id: int | None) -> None:
    """A step id no version of the sequence (of any sequence) has is a typo, not an empty plan."""
    query = (
        select(col(Step.step_id))
        .distinct()
        .join(SequenceVersion, col(SequenceVersion.id) == col(Step.version_id))
    )
    if sequence_id is not None:
        query = query.where(col(SequenceVersion.sequence_id) == sequence_id)
    known = set(connection.execute(query).scalars())
    if step_id not in known:
        raise BadFilter(f"no step {step_id!r}{did_you_mean(step_id, sorted(known))}", "step")


def _groups(rows: Iterable[Row]) -> list[dict[str, Any]]:
    """Per sequence and step: how many, the oldest and the newest (rows come oldest first)."""
    groups: dict[tuple[str, str | None], dict[str, Any]] = {}
    for row in rows:
        key = (row.sequence, row.step_id)
        if key not in groups:
            groups[key] = {"sequence": row.sequence, "step": row.step_id, "count": 0}
            groups[key]["oldest"] = row.since
        groups[key]["count"] += 1
        groups[key]["newest"] = row.since
    return sorted(groups.values(), key=lambda group: (group["sequence"], group["step"] or ""))


def _decide(
    connection: Connection, rows: list[Row], decision: str, now: datetime, zone: str
) -> tuple[list[dict[str, Any]], dict[int, dict[str, Any]]]:
    """Each enrollment's next state and, for `sent`, where it goes next (by enrollment id)."""
    if decision == "resend":
        again = {"status": "active", "next_run_at": now, "exit_reason": None, "updated_at": now}
        return [{"_id": row.id} | again for row in rows], {}
    if decision == "stop":
        return [_stopped(row, now) for row in rows], {}
    jobs = _jobs(connection, rows)
    states = [_moved_on(job, row.since, now, zone) for job, row in zip(jobs, rows, strict=True)]
    return states, {job.claim.id: job.detail or {} for job in jobs}


def _stopped(row: Row, now: datetime) -> dict[str, Any]:
    reason = f"stopped by hand: the send of step {row.step_id} had an unclear fate (settled)"
    ended = {"status": "stopped", "finished_at": now, "exit_reason": reason}
    return {"_id": row.id, "updated_at": now} | ended


def _jobs(connection: Connection, rows: list[Row]) -> list[Job]:
    """Each enrollment as the engine sees a completed send: the step that went out, the next."""
    specs: dict[tuple[int, int], Any] = {}

    def spec(sequence_id: int, version: int) -> Any:
        if (sequence_id, version) not in specs:
            definition = batch.definition(connection, sequence_id, version)
            specs[sequence_id, version] = spec_of(definition)
        return specs[sequence_id, version]

    jobs = []
    sent: AnyStep | None
    for row in rows:
        current = spec(row.sequence_id, row.current_version)
        position = steps.locate(
            spec(row.sequence_id, row.version), current, row.current_version, row.step_id
        )
        if position.removed is not None:  # the current version dropped the step that went out
            sent, after = position.removed, position.step
        else:
            sent = position.step
            after = steps.next_step(current, sent.key) if sent else None
        jobs.append(Job(row, row, current, row.current_version, sent, after, status="sent"))
    return jobs


def _moved_on(job: Job, sent_at: datetime, now: datetime, zone: str) -> dict[str, Any]:
    """The state a completion at `sent_at` gives; a next step overdue by now runs from now on."""
    state = transition(job, sent_at, zone) | {"updated_at": now}
    if state["status"] != "active" or job.next is None or state["next_run_at"] >= now:
        return state
    # Its delay is over already: what is left is the send window and holidays, from now.
    slot = step_due(now - job.next.delay, job.next, job.spec, job.lead.timezone, zone)
    job.note(next={"step": job.next.id, "at": slot.at.isoformat(), "reasons": list(slot.reasons)})
    return state | {"next_run_at": slot.at}


def _executions(
    rows: list[Row], details: dict[int, dict[str, Any]], decision: str, settled: dict[str, Any]
) -> list[dict[str, Any]]:
    """The uncertain executions, settled: `sent` for that decision, else still `unknown`."""
    sent = decision == "sent"
    return [
        {
            "_id": row.execution_id,
            "status": "sent" if sent else "unknown",
            "error": None if sent else row.error,
            "detail": (row.detail or {})
            | details.get(row.id, {})
            | {"settled": settled | ({"error": row.error} if sent else {})},
        }
        for row in rows
        if row.execution_id is not None
    ]


def _log(connection: Connection, rows: list[Row], settled: dict[str, Any], now: datetime) -> None:
    """One control row per enrollment, numbered after its earlier control events."""
    counts: dict[int, int] = dict(
        connection.execute(
            select(execution.c.enrollment_id, func.count())
            .where(bulk.among(connection, execution.c.enrollment_id, (row.id for row in rows)))
            .where(execution.c.step_id == CONTROL_STEP)
            .group_by(execution.c.enrollment_id)
        ).all()
    )
    bulk.insert(connection, execution, [_control(row, counts, settled, now) for row in rows])


def _control(
    row: Row, counts: dict[int, int], settled: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """The control row of one settled enrollment (see nurture.engine.control)."""
    times = {"due_at": now, "started_at": now, "finished_at": now}
    return times | {
        "enrollment_id": row.id,
        "lead_id": row.lead_id,
        "sequence_id": row.sequence_id,
        "version": row.version,
        "step_id": CONTROL_STEP,
        "action_type": "control",
        "attempt": counts.get(row.id, 0) + 1,
        "status": "settled",
        "detail": {"step_id": row.step_id, "from": "unknown"} | settled,
    }
