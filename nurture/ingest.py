"""Leads that funnels push (the HTTP webhook): idempotent arrival, and events on a lead.

A retried request must not enroll a lead twice. With an `Idempotency-Key` the first answer
is kept and replayed; without one, a lead posted again with the same external id and
nothing changed gets its standing decision back instead of being matched again.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlmodel import Session, col, select

from nurture.errors import NurtureError
from nurture.leads import (
    LeadInput,
    LeadRules,
    add_lead,
    changed,
    clean,
    convert,
    existing_lead,
    find_funnel,
    find_lead,
    update_lead,
)
from nurture.store.tables import Enrollment, IngestKey, Lead, MatchDecision, Sequence

EventType = Literal["convert", "status", "score", "temperature", "tag", "custom"]


@dataclass(frozen=True)
class Outcome:
    """Where a lead stands after it arrived: stored, and in which sequence (or why none)."""

    lead: Lead
    created: bool
    sequence: str | None
    reason: str
    enrollment: Enrollment | None
    replayed: bool = False


def ingest(
    session: Session, data: LeadInput, funnel: str, now: datetime, rules: LeadRules
) -> Outcome:
    """`nurture leads add`, except that an unchanged repeat of a known external id is a replay."""
    if data.external_id:
        values = clean(data, rules.phone_region)
        lead = existing_lead(session, values)
        funnel_id = find_funnel(session, funnel).id
        if lead is not None and not changed(lead, values | {"funnel_id": funnel_id}):
            return standing(session, lead)
    arrival = add_lead(session, data, funnel, now, rules)
    winner = arrival.decision.winner
    return Outcome(
        arrival.lead,
        arrival.created,
        winner.name if winner else None,
        arrival.decision.reason,
        arrival.enrollment,
    )


def standing(session: Session, lead: Lead) -> Outcome:
    """The lead's latest match decision and enrollment, as a replayed outcome."""
    decision = session.exec(
        select(MatchDecision)
        .where(MatchDecision.lead_id == lead.id)
        .order_by(col(MatchDecision.id).desc())
    ).first()
    enrollment = session.exec(
        select(Enrollment).where(Enrollment.lead_id == lead.id).order_by(col(Enrollment.id).desc())
    ).first()
    sequence = enrollment and session.get(Sequence, enrollment.sequence_id)
    reason = decision.reason if decision else "not matched yet"
    name = sequence.name if sequence else None
    return Outcome(lead, False, name, reason, enrollment, replayed=True)


def recall(session: Session, key: str) -> dict[str, Any] | None:
    """The answer kept for an idempotency key, if the key was seen."""
    found = session.get(IngestKey, key)
    return found.response if found else None


def remember(
    session: Session, key: str, lead_id: int, response: dict[str, Any], now: datetime
) -> None:
    """Keep the answer under the key (IntegrityError: a concurrent request kept one first)."""
    session.add(IngestKey(key=key, lead_id=lead_id, response=response, created_at=now))
    session.flush()


@dataclass(frozen=True)
class LeadEvent:
    type: EventType
    value: str | int | None = None
    name: str | None = None


def apply_event(
    session: Session, ref: str, event: LeadEvent, now: datetime, rules: LeadRules
) -> Lead:
    """Apply an event to the lead, as the CLI would (a conversion stops enrollments)."""
    if event.type == "convert":
        lead = find_lead(session, ref)
        convert(session, lead, now, rules)
        return lead
    return update_lead(session, ref, _event_input(event, now), now, rules)


def _event_input(event: LeadEvent, now: datetime) -> LeadInput:
    """status/score/temperature set the field, tag adds one, custom sets a custom field."""
    if event.type == "custom":
        if not event.name:
            raise NurtureError("a custom event needs a name")
        value = event.value if event.value is not None else now.isoformat()
        return LeadInput(fields={event.name: value})
    if event.value is None or event.value == "":
        raise NurtureError(f"a {event.type} event needs a value")
    if event.type == "tag":
        return LeadInput(tags=[str(event.value)])
    if event.type == "score":
        return LeadInput(score=event.value)
    return LeadInput(**{event.type: str(event.value)})
