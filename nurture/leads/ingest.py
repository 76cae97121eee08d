"""Leads that funnels push (the HTTP webhook): idempotent arrival, and events on a lead.

A retried request must not enroll a lead twice. With an `Idempotency-Key` the first answer
is kept and replayed; without one, a lead posted again with the same external id and
nothing changed gets its standing decision back instead of being matched again.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import insert
from sqlmodel import Session, col, select

from nurture.errors import KeyReused, NurtureError
from nurture.leads import consent, identity
from nurture.leads.enrollment import latest_decision
from nurture.leads.identity import Clash
from nurture.leads.records import (
    LeadInput,
    LeadRules,
    add_lead,
    changed,
    clean,
    convert,
    find_funnel,
    find_lead,
    take_turns,
    update_lead,
)
from nurture.store.tables import Enrollment, IngestKey, Lead, Sequence

EventType = Literal[
    "convert", "status", "score", "temperature", "tag", "custom", "inbound", "opt-out", "opt-in"
]


@dataclass(frozen=True)
class Outcome:
    """Where a lead stands after it arrived: stored, and in which sequence (or why none)."""

    lead_id: int
    created: bool
    sequence: str | None
    reason: str
    step_id: str | None = None
    """The first (for a known lead: the current) step of its enrollment, and when it is due."""
    due_at: datetime | None = None
    replayed: bool = False
    clashes: tuple[Clash, ...] = ()
    """Its keys that other leads hold: left out, reported (nurture.leads.identity)."""


def ingest(
    session: Session, data: LeadInput, funnel: str, now: datetime, rules: LeadRules
) -> Outcome:
    """`nurture leads add`, except that an unchanged repeat of a known external id is a replay."""
    if data.external_id:
        values = clean(data, rules.phone_region)
        take_turns(session, identity.lock_names(values))
        match = identity.identify(session, values, rules.identity)
        funnel_id = find_funnel(session, funnel).id
        lead, given = match.lead, values | {"funnel_id": funnel_id}
        same = match.known and not match.clashes
        if lead is not None and same and not changed(lead, identity.applicable(lead, given, ())):
            return standing(session, lead)
    arrival = add_lead(session, data, funnel, now, rules)
    winner, enrollment = arrival.decision.winner, arrival.enrollment
    return Outcome(
        arrival.lead.id,
        arrival.created,
        winner.name if winner else None,
        arrival.decision.reason,
        enrollment.step_id if enrollment else None,
        enrollment.next_run_at if enrollment else None,
        clashes=arrival.clashes,
    )


def standing(session: Session, lead: Lead) -> Outcome:
    """The lead's latest match decision and enrollment, as a replayed outcome."""
    decision = latest_decision(session, lead.id)
    enrollment = session.exec(
        select(Enrollment).where(Enrollment.lead_id == lead.id).order_by(col(Enrollment.id).desc())
    ).first()
    reason = decision.reason if decision else "not matched yet"
    if enrollment is None:
        return Outcome(lead.id, False, None, reason, replayed=True)
    name = session.get_one(Sequence, enrollment.sequence_id).name
    step, due = enrollment.step_id, enrollment.next_run_at
    return Outcome(lead.id, False, name, reason, step, due, replayed=True)


def recall_many(session: Session, keys: set[str]) -> dict[str, IngestKey]:
    """The kept answers of those of `keys` that were seen."""
    if not keys:
        return {}
    return {
        row.key: row for row in session.exec(select(IngestKey).where(col(IngestKey.key).in_(keys)))
    }


def replay(kept: IngestKey, body_hash: str) -> dict[str, Any] | KeyReused:
    """The answer kept for the key, replayed; KeyReused when this request's body differs."""
    if kept.body_hash not in (None, body_hash):  # None: kept before body hashes were
        return KeyReused(kept.key)
    return kept.response | {"replayed": True}


def remember_many(
    session: Session, answers: list[tuple[str, str, int, dict[str, Any]]], now: datetime
) -> None:
    """Keep each (key, body hash, lead id, answer); IntegrityError: a concurrent request kept a
    key first."""
    rows = [
        {"key": key, "body_hash": body, "lead_id": lead_id, "response": response, "created_at": now}
        for key, body, lead_id, response in answers
    ]
    if rows:
        session.connection().execute(insert(IngestKey.__table__), rows)


@dataclass(frozen=True)
class LeadEvent:
    type: EventType
    value: str | int | None = None
    name: str | None = None
    channel: str | None = None


def apply_event(
    session: Session, ref: str, event: LeadEvent, now: datetime, rules: LeadRules
) -> Lead:
    """Apply an event to the lead, as the CLI would (a conversion stops enrollments)."""
    if event.type == "convert":
        lead = find_lead(session, ref)
        convert(session, lead, now, rules)
        return lead
    if event.type in ("inbound", "opt-out", "opt-in"):
        return _consent_event(session, find_lead(session, ref), event, now)
    return update_lead(session, ref, _event_input(event, now), now, rules)


def _consent_event(session: Session, lead: Lead, event: LeadEvent, now: datetime) -> Lead:
    """inbound: the lead wrote (STOP and START count); opt-out/opt-in: a channel, or all."""
    if event.type == "inbound":
        text = None if event.value is None else str(event.value)
        return consent.inbound(session, lead, now, text, event.channel or "whatsapp").lead
    if not event.channel:
        raise NurtureError(f"an {event.type} event needs a channel (sms, whatsapp, email or all)")
    change = consent.opt_out if event.type == "opt-out" else consent.opt_in
    change(session, lead, [event.channel], now, "api")
    session.refresh(lead)
    return lead


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
    if event.type == "temperature":
        return LeadInput(temperature=str(event.value))
    return LeadInput(status=str(event.value))  # the last kind left (convert and the rest: above)
