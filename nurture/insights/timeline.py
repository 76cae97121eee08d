"""A lead's timeline read back from the store: each step run, what it sent or did, and why.

The dry run and the daemon write the same execution log; this reads it the same way for both,
so their timelines can be compared row by row.
"""

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from nurture.channels import OutgoingMessage, shown_text
from nurture.leads.enrollment import first_step
from nurture.rules.schedule import step_due, window_zone
from nurture.rules.steps import spec_of
from nurture.spec.actions import ScoreConfig, TagConfig
from nurture.spec.durations import format_duration
from nurture.spec.models import SequenceSpec
from nurture.store.tables import Appointment, Enrollment, Execution, Lead, SequenceVersion, Task

RANKS = {"event": 0, "step": 1, "end": 2}
"""At one instant events come first (they were applied before the steps ran), the end last."""


@dataclass(frozen=True)
class Row:
    """One line of a timeline: a step run (or skipped), an event, or how the enrollment ended."""

    at: datetime
    kind: str  # step, event, end
    outcome: str  # sent, done, skipped, failed, retry, unknown; event; completed, converted...
    step: str | None = None
    action: str | None = None
    attempt: int = 1
    detail: str = ""
    notes: tuple[str, ...] = ()
    message: dict[str, Any] | None = field(default=None, compare=False)

    def to_dict(self, zone: str) -> dict[str, Any]:
        return asdict(self) | {"at": self.at.isoformat(), "local": local_time(self.at, zone)}


def local_time(at: datetime, zone: str) -> str:
    """`Mon 2025-03-03 09:00 GMT`: the time as the lead sees it."""
    return at.astimezone(ZoneInfo(zone)).strftime("%a %Y-%m-%d %H:%M %Z")


def ordered(rows: list[Row]) -> list[Row]:
    """Rows by time; at one instant events, then steps, then the end."""
    return sorted(rows, key=lambda row: (row.at, RANKS[row.kind]))


def lead_zone(spec: SequenceSpec, lead: Lead, default_zone: str) -> str:
    """The zone a lead's times are shown in: the lead's, the window's, the project's."""
    return window_zone(spec.send_window, lead.timezone, default_zone)


def read(
    session: Session,
    lead_id: int,
    default_zone: str,
    messages: Mapping[int, OutgoingMessage] | None = None,
) -> list[Row]:
    """Every step the lead's enrollments ran, and how each enrollment ended (or what is next)."""
    messages = messages or {}
    lead = session.get(Lead, lead_id)
    zone = lead.timezone if lead is not None else None
    enrollments = session.exec(
        select(Enrollment).where(Enrollment.lead_id == lead_id).order_by(col(Enrollment.id))
    ).all()
    rows: list[Row] = []
    for enrollment in enrollments:
        spec = _spec(session, enrollment)
        moves = {first_step(spec).key: _first_moves(enrollment, spec, zone, default_zone)}
        for execution in _executions(session, enrollment.id):
            rows.append(_step_row(session, execution, spec, moves, messages))
            _remember_moves(execution, moves)
        rows.append(_end_row(enrollment, spec))
    return ordered(rows)


def _spec(session: Session, enrollment: Enrollment) -> SequenceSpec:
    definition = session.exec(
        select(SequenceVersion.definition).where(
            SequenceVersion.sequence_id == enrollment.sequence_id,
            SequenceVersion.version == enrollment.version,
        )
    ).one()
    return spec_of(dict(definition))  # the JSON column's value, typed as a Mapping


def _executions(session: Session, enrollment_id: int) -> list[Execution]:
    query = select(Execution).where(
        Execution.enrollment_id == enrollment_id, col(Execution.step_id) != "@control"
    )
    return list(session.exec(query.order_by(col(Execution.id))).all())


def _first_moves(
    enrollment: Enrollment, spec: SequenceSpec, zone: str | None, default_zone: str
) -> tuple[str, ...]:
    """Why the first step's time moved from enrollment plus its delay (the engine's own rule)."""
    return step_due(enrollment.enrolled_at, first_step(spec), spec, zone, default_zone).reasons


def _remember_moves(execution: Execution, moves: dict[str, tuple[str, ...]]) -> None:
    following = (execution.detail or {}).get("next")
    if following:
        moves[following["step"]] = tuple(following.get("reasons", ()))


def _step_row(
    session: Session,
    execution: Execution,
    spec: SequenceSpec,
    moves: dict[str, tuple[str, ...]],
    messages: Mapping[int, OutgoingMessage],
) -> Row:
    notes = list(moves.pop(execution.step_id, ()) if execution.attempt == 1 else ())
    detail = execution.detail or {}
    if execution.variant:
        notes.append(f"variant {execution.variant}")
    if execution.error:
        notes.append(execution.error)
    if "retry_at" in detail:
        notes.append(f"retry at {detail['retry_at']}")
    if "wait_for" in detail:
        notes.append(waited_text(detail))
    message = messages.get(execution.id)
    return Row(
        at=execution.started_at or execution.due_at,  # a run not yet started: when it is due
        kind="step",
        outcome=execution.status,
        step=execution.step_id,
        action=execution.action_type,
        attempt=execution.attempt,
        detail=_what(session, execution, spec, message),
        notes=tuple(notes),
        message=_message_dict(message),
    )


def waited_text(detail: dict[str, Any]) -> str:
    """How a wait for an event ended: `the click came (2025-03-03T12:00)` or `no reply came`."""
    event = detail["wait_for"]
    if detail.get("came"):
        return f"the {event} came ({str(detail.get('came_at', ''))[:16]}): the wait ended early"
    return f"no {event} came: the wait timed out"


def _message_dict(message: OutgoingMessage | None) -> dict[str, Any] | None:
    if message is None:
        return None
    keys = ("channel", "recipient", "subject", "body", "template")
    return {key: getattr(message, key) for key in keys if getattr(message, key) is not None}


def _what(
    session: Session, execution: Execution, spec: SequenceSpec, message: OutgoingMessage | None
) -> str:
    """The rendered message, or the effect in a few words."""
    if message is not None:
        subject = f"Subject: {message.subject}\n" if message.subject else ""
        return f"to {message.recipient}: {subject}{shown_text(message)}"
    step = next((s for s in spec.steps if s.id == execution.step_id), None)
    if step is None or execution.status not in ("done", "sent"):
        return ""
    config = step.action_config
    if isinstance(config, ScoreConfig):
        return f"score set to {config.set}" if config.set is not None else f"score {config.add:+d}"
    if isinstance(config, TagConfig):
        return "tags + " + ", ".join(config.tags)
    if step.action_type == "wait":
        wait_for = getattr(step, "wait_for", None)
        if wait_for is not None:
            return f"wait up to {format_duration(step.delay + wait_for.timeout)} for a {wait_for.event}"
        return f"wait {format_duration(step.delay)}"
    return _stored_effect(session, execution)


def _stored_effect(session: Session, execution: Execution) -> str:
    """A task or appointment the step created."""
    task = session.exec(select(Task).where(Task.execution_id == execution.id)).first()
    if task is not None:
        due = f" (due {task.due_at:%Y-%m-%d %H:%M} UTC)" if task.due_at else ""
        return f"task: {task.title}{due}"
    found = session.exec(
        select(Appointment).where(Appointment.execution_id == execution.id)
    ).first()
    if found is None:
        return ""
    if found.starts_at is None:  # offered (the lead books on the page) or no slot was free
        return f"appointment: {found.title} ({found.status})"
    status = "" if found.status == "booked" else f" ({found.status.replace('_', ' ')})"
    return f"appointment: {found.title} at {found.starts_at:%Y-%m-%d %H:%M} UTC{status}"


def _end_row(enrollment: Enrollment, spec: SequenceSpec) -> Row:
    if enrollment.status in ("active", "paused"):
        at = enrollment.next_run_at or enrollment.updated_at
        when = f"at {at:%Y-%m-%d %H:%M} UTC"
        if enrollment.next_run_at is None:  # parked: timed from a call not booked yet
            when = "once the lead books a call"
        return Row(
            at=at,
            kind="end",
            outcome="pending",
            step=enrollment.step_id,
            detail=f"next: {enrollment.step_id} {when}",
        )
    notes: tuple[str, ...] = ()
    if enrollment.status in ("converted", "stopped", "failed", "completed"):
        ids = [step.key for step in spec.steps]
        start = ids.index(enrollment.step_id) if enrollment.step_id in ids else len(ids)
        # a failed step ran, and so did a step that ends the sequence; the ones after did not
        start += enrollment.status in ("failed", "completed")
        if ids[start:]:
            notes = ("not run: " + ", ".join(ids[start:]),)
    return Row(
        at=enrollment.finished_at or enrollment.updated_at,
        kind="end",
        outcome=enrollment.status,
        detail=enrollment.exit_reason or enrollment.status,
        notes=notes,
    )
