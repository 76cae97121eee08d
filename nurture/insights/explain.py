"""`nurture explain LEAD`: why the lead got its sequence (or none), each step's state, when the next
runs, and the sends of unclear fate waiting to be settled."""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, select

from nurture.engine.delivery.settle import command
from nurture.leads import engagement
from nurture.leads.enrollment import latest_decision
from nurture.leads.records import find_lead, funnel_names
from nurture.rules import experiments
from nurture.rules.engagement import Engagement, Event, Scoring
from nurture.rules.matching import engagement_checks
from nurture.rules.schedule import step_due
from nurture.rules.steps import spec_of
from nurture.spec.durations import format_duration
from nurture.spec.models import SequenceSpec
from nurture.spec.steps import AnyStep
from nurture.store import decisions
from nurture.store.tables import (
    Appointment,
    Enrollment,
    Execution,
    Lead,
    MatchDecision,
    SequenceVersion,
)
from nurture.store.tables import Sequence as SequenceRow

WAITING = ("active", "paused")


def explain(
    session: Session,
    ref: str,
    default_zone: str,
    now: datetime | None = None,
    scoring: Scoring | None = None,
) -> dict[str, Any]:
    """The lead's matching decision, its engagement and, for each enrollment, its steps and
    the next due one (with its engagement conditions checked at `now`)."""
    lead = find_lead(session, ref)
    funnels = funnel_names(session)
    decision = latest_decision(session, lead.id)
    enrollments = session.exec(
        select(Enrollment).where(col(Enrollment.lead_id) == lead.id).order_by(col(Enrollment.id))
    ).all()
    now = now or datetime.now(UTC)
    engaged = engagement.summary(session.connection(), lead.id, now, scoring)
    facts = [
        Event(e["kind"], e["at"], e["step_id"], e.get("enrollment_id"))
        for e in engaged["engagement"]
    ]
    return {
        "lead": _lead(lead, funnels),
        "decision": _decision(session, decision, funnels) if decision else None,
        "engagement": engaged,
        "enrollments": [
            _enrollment(session, lead, e, default_zone)
            | _engagement_checks(session, lead, e, facts, now, scoring)
            for e in enrollments
        ],
    }


def _engagement_checks(
    session: Session,
    lead: Lead,
    row: Enrollment,
    facts: list[Event],
    now: datetime,
    scoring: Scoring | None,
) -> dict[str, Any]:
    """The next step's engagement conditions as they stand now: which hold, which not, why."""
    if row.status not in WAITING:
        return {}
    definition = session.exec(
        select(SequenceVersion.definition).where(
            SequenceVersion.sequence_id == row.sequence_id, SequenceVersion.version == row.version
        )
    ).one()
    step = next((s for s in spec_of(dict(definition)).steps if s.id == row.step_id), None)
    conditions = step.conditions if step is not None else None
    if conditions is None or not conditions.engagement():
        return {}
    mine = Engagement(tuple(facts), now, row.id, row.enrolled_at, scoring or Scoring())
    return {"engagement_checks": [str(check) for check in engagement_checks(conditions, mine)]}


def _lead(lead: Lead, funnels: dict[int, str]) -> dict[str, Any]:
    keep = ("id", "name", "email", "source", "status", "temperature", "score", "tags", "timezone")
    return {key: getattr(lead, key) for key in keep} | {"funnel": _funnel(funnels, lead.funnel_id)}


def _funnel(funnels: dict[int, str], funnel_id: int | None) -> str | None:
    return funnels.get(funnel_id) if funnel_id is not None else None


def _decision(session: Session, row: MatchDecision, funnels: dict[int, str]) -> dict[str, Any]:
    candidates = decisions.candidates_of(session.connection(), row)
    winner = next((c["sequence"] for c in candidates if c["sequence_id"] == row.sequence_id), None)
    return {
        "decided_at": row.decided_at,
        "funnel": _funnel(funnels, row.funnel_id),
        "winner": winner if row.sequence_id else None,
        "reason": row.reason,
        "candidates": candidates,
    }


def _enrollment(session: Session, lead: Lead, row: Enrollment, default_zone: str) -> dict[str, Any]:
    definition = session.exec(
        select(SequenceVersion.definition).where(
            SequenceVersion.sequence_id == row.sequence_id, SequenceVersion.version == row.version
        )
    ).one()
    spec = spec_of(dict(definition))  # the JSON column's value, typed as a Mapping
    executions = session.exec(
        select(Execution).where(col(Execution.enrollment_id) == row.id).order_by(col(Execution.id))
    ).all()
    last = {x.step_id: x for x in executions}  # the latest attempt of each step
    calls = _appointments(session, row.id)
    current, canary = session.exec(
        select(SequenceRow.current_version, SequenceRow.canary_version).where(
            SequenceRow.id == row.sequence_id
        )
    ).one()
    return {
        "id": row.id,
        "sequence": spec.name,
        "version": row.version,
        "canary": canary is not None and row.version > current,
        "status": row.status,
        "exit_reason": row.exit_reason,
        "steps": [
            _step(step, row, last.get(step.key)) | _variant(spec, step, row, last.get(step.key))
            for step in spec.steps
        ],
        "next": _next(spec, lead, row, executions, default_zone, calls),
        "settle": _unsettled(row, executions),
        "appointments": calls,
    }


def _appointments(session: Session, enrollment_id: int) -> list[dict[str, Any]]:
    """The calls the enrollment made or offered, and what became of them."""
    rows = session.exec(
        select(Appointment)
        .where(col(Appointment.enrollment_id) == enrollment_id)
        .order_by(col(Appointment.id))
    ).all()
    keep = ("id", "title", "status", "mode", "starts_at", "duration_minutes", "revision")
    return [{key: getattr(row, key) for key in keep} for row in rows]


def _unsettled(row: Enrollment, executions: Sequence[Execution]) -> dict[str, Any] | None:
    """The send of unclear fate an `unknown` enrollment waits on, and the command to settle it."""
    if row.status != "unknown":
        return None
    uncertain = next(
        (x for x in reversed(executions) if x.step_id == row.step_id and x.status == "unknown"),
        None,
    )
    return {
        "step": row.step_id,
        "attempt": uncertain.attempt if uncertain else row.attempts,
        "since": uncertain.started_at if uncertain else row.updated_at,
        "command": command(row.id),
    }


def _step(step: AnyStep, row: Enrollment, execution: Execution | None) -> dict[str, Any]:
    data = {"id": step.id, "name": step.name, "action_type": step.action_type.value}
    if execution is not None:
        detail = execution.error or (execution.detail or {}).get("reason")
        held = (execution.detail or {}).get("held")
        if held and not detail:
            detail = "conditions held: " + "; ".join(held)
        return data | {
            "state": execution.status,
            "attempt": execution.attempt,
            "at": execution.finished_at or execution.started_at or execution.due_at,
            "detail": detail,
        }
    if step.id == row.step_id and row.status in WAITING:
        return data | {"state": "next", "at": row.next_run_at, "detail": None}
    state = "pending" if step.active else "inactive"
    return data | {"state": state, "at": None, "detail": None}


def _variant(
    spec: SequenceSpec, step: AnyStep, row: Enrollment, execution: Execution | None
) -> dict[str, Any]:
    """The variant of an experiment step the lead ran, drew at enrollment, or will draw."""
    if execution is not None and execution.variant:
        return {"variant": execution.variant, "variant_source": "ran"}
    recorded = (row.variants or {}).get(step.key)
    if recorded:
        return {"variant": recorded[0], "variant_source": f"drawn at enrollment (v{recorded[1]})"}
    arms = experiments.variant_arms(step)
    if execution is None and arms:
        experiment = experiments.step_experiment(spec.slug, step.key)
        drawn = experiments.arm(row.lead_id, experiment, arms)
        return {"variant": drawn, "variant_source": "drawn when the step runs"}
    return {}


def _next(
    spec: SequenceSpec,
    lead: Lead,
    row: Enrollment,
    executions: Sequence[Execution],
    default_zone: str,
    calls: list[dict[str, Any]],
) -> dict[str, Any] | None:
    """When and why the next step runs: its delay from the previous step, the window, holidays."""
    step = next((s for s in spec.steps if s.id == row.step_id), None)
    if step is not None and step.relative_to and row.status in WAITING:
        return _from_call(step, row, calls)
    if step is None or row.status not in WAITING or row.next_run_at is None:
        return None
    done = [(x.finished_at, x.step_id) for x in executions if x.finished_at is not None]
    after, since = (done[-1][0], f"step {done[-1][1]}") if done else (row.enrolled_at, "enrollment")
    slot = step_due(after, step, spec, lead.timezone, default_zone)
    why = [f"delay {format_duration(step.delay)} after {since} ({_iso(after)})", *slot.reasons]
    if row.attempts:
        why.append(f"retry: attempt {row.attempts + 1}")
    if row.exit_reason and row.status == "active":  # a frequency cap or an exclusive sequence
        why.append(row.exit_reason)
    elif not row.attempts and slot.at != row.next_run_at:
        why.append(f"scheduled for {_iso(row.next_run_at)} (set by the engine or a command)")
    if row.status == "paused":
        why.append("the enrollment is paused: nothing runs until `nurture enrollments resume`")
    return {"step": step.id, "name": step.name, "at": row.next_run_at, "why": why}


def _from_call(step: AnyStep, row: Enrollment, calls: list[dict[str, Any]]) -> dict[str, Any]:
    """A step timed from the appointment: when, from which call, or what it waits for."""
    call = next((c for c in reversed(calls) if c["status"] in ("offered", "booked")), None)
    call = call or (calls[-1] if calls else None)
    side = "before" if step.before else "after"
    offset = f"{format_duration(step.delay)} {side} the appointment"
    if call is None or call["starts_at"] is None:
        status = call["status"] if call else "none"
        why = [f"{offset}; it waits until the lead books a call (appointment: {status})"]
    else:
        why = [f"{offset} {call['id']} ({call['status']}, {_iso(call['starts_at'])} UTC)"]
    if row.status == "paused":
        why.append("the enrollment is paused: nothing runs until `nurture enrollments resume`")
    return {"step": step.id, "name": step.name, "at": row.next_run_at, "why": why}


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="minutes")
