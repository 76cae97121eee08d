"""Manual control of enrollments: list, advance, pause, resume, stop.

Each command is logged in the execution log as a row with action_type 'control', step_id
'@control' (no real step id starts with @), attempt counting the enrollment's control events,
status the event (advanced, paused, resumed, stopped) and detail {step_id, from}.
"""

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, func, select

from nurture.errors import InvalidState, NotFound, NurtureError
from nurture.leads.enrollment import OPEN
from nurture.project.sequences import find
from nurture.spec.diagnostics import did_you_mean
from nurture.store.tables import Enrollment, Execution, Lead, Sequence, SequenceVersion

CONTROL_STEP = "@control"
FINISHED = frozenset({"completed", "converted", "stopped", "failed"})
STATUSES = (*OPEN, *sorted(FINISHED))


def list_enrollments(
    session: Session, *, sequence: str | None = None, status: str | None = None
) -> list[dict[str, Any]]:
    """Enrollments with their lead and sequence, most recent first."""
    query = (
        select(Enrollment, Lead.name, Sequence.name)
        .join(Lead, col(Lead.id) == Enrollment.lead_id)
        .join(Sequence, col(Sequence.id) == Enrollment.sequence_id)
        .order_by(col(Enrollment.id).desc())
    )
    if sequence is not None:  # a deleted sequence's enrollments too
        query = query.where(Enrollment.sequence_id == find(session, sequence, deleted=True).id)
    if status is not None:
        if status not in STATUSES:
            raise NurtureError(
                f"unknown status {status!r}"
                + (did_you_mean(status, STATUSES) or f" (one of {', '.join(STATUSES)})")
            )
        query = query.where(Enrollment.status == status)
    return [_row(e, lead, name) for e, lead, name in session.exec(query)]


def enrollment_row(session: Session, enrollment: Enrollment) -> dict[str, Any]:
    """One enrollment as `list_enrollments` shows it."""
    lead, sequence = (
        session.get(Lead, enrollment.lead_id),
        session.get(Sequence, enrollment.sequence_id),
    )
    return _row(enrollment, lead.name if lead else "", sequence.name if sequence else "")


def _row(enrollment: Enrollment, lead: str, sequence: str) -> dict[str, Any]:
    keys = (
        "id",
        "lead_id",
        "status",
        "step_id",
        "version",
        "next_run_at",
        "attempts",
        "exit_reason",
    )
    return {key: getattr(enrollment, key) for key in keys} | {"lead": lead, "sequence": sequence}


def pause(session: Session, enrollment_id: int, now: datetime) -> Enrollment:
    """Hold an active enrollment where it is."""
    enrollment = _get(session, enrollment_id, allowed={"active"})
    return _change(session, enrollment, "paused", now, status="paused")


def resume(session: Session, enrollment_id: int, now: datetime) -> Enrollment:
    """Resume a paused enrollment, or one left `unknown` after a crash (its step runs again)."""
    enrollment = _get(session, enrollment_id, allowed={"paused", "unknown"})
    due = enrollment.next_run_at or now
    return _change(
        session, enrollment, "resumed", now, status="active", next_run_at=due, exit_reason=None
    )


def stop(session: Session, enrollment_id: int, now: datetime) -> Enrollment:
    """End an enrollment for good; a step running now finishes but its completion is dropped."""
    enrollment = _get(session, enrollment_id, allowed={"active", "running", "paused", "unknown"})
    return _change(
        session,
        enrollment,
        "stopped",
        now,
        status="stopped",
        finished_at=now,
        exit_reason="stopped by hand",
        lease_owner=None,
        lease_expires_at=None,
    )


def advance(session: Session, enrollment_id: int, now: datetime) -> Enrollment:
    """Run the next step now, where the sequence allows manual advance."""
    enrollment = _get(session, enrollment_id, allowed={"active", "paused"})
    definition = session.exec(
        select(SequenceVersion.definition).where(
            SequenceVersion.sequence_id == enrollment.sequence_id,
            SequenceVersion.version == enrollment.version,
        )
    ).one()
    if not definition.get("manual_advance"):
        raise InvalidState(
            f"enrollment {enrollment_id}: its sequence does not allow manual advance "
            "(set manual_advance: true)"
        )
    return _change(session, enrollment, "advanced", now, status="active", next_run_at=now)


def _get(session: Session, enrollment_id: int, *, allowed: set[str]) -> Enrollment:
    enrollment = session.exec(
        select(Enrollment).where(Enrollment.id == enrollment_id).with_for_update()
    ).first()
    if enrollment is None:
        raise NotFound(f"no enrollment {enrollment_id}")
    if enrollment.status not in allowed:
        hint = (
            " (its step is running now; try again in a moment)"
            if enrollment.status == "running"
            else ""
        )
        raise InvalidState(f"enrollment {enrollment_id} is {enrollment.status}{hint}")
    return enrollment


def _change(
    session: Session, enrollment: Enrollment, event: str, now: datetime, **values: Any
) -> Enrollment:
    detail = {"step_id": enrollment.step_id, "from": enrollment.status}
    for key, value in (values | {"updated_at": now}).items():
        setattr(enrollment, key, value)
    count = session.exec(
        select(func.count()).where(
            Execution.enrollment_id == enrollment.id, Execution.step_id == CONTROL_STEP
        )
    ).one()
    session.add(
        Execution(
            enrollment_id=enrollment.id,
            lead_id=enrollment.lead_id,
            sequence_id=enrollment.sequence_id,
            version=enrollment.version,
            step_id=CONTROL_STEP,
            action_type="control",
            attempt=count + 1,
            status=event,
            due_at=now,
            started_at=now,
            finished_at=now,
            detail=detail,
        )
    )
    session.flush()
    return enrollment
