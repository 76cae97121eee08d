"""Many leads arriving at once (concurrent webhook calls), stored in one transaction, set-based.

New leads are inserted, matched and enrolled with a few statements for the whole batch (the
sequences of a funnel parsed once, one decision per distinct set of trigger facts). Leads
the store knows already, and repeats within the batch, go one by one through `ingest`, as
`nurture leads add` would take them. A bad arrival fails alone; the others land.
"""

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session, col, select

from nurture.errors import NurtureError
from nurture.leads.enrollment import Offer, candidates_json, decide, funnel_offers, new_enrollment
from nurture.leads.ingest import Outcome, ingest
from nurture.leads.records import (
    LeadInput,
    LeadRules,
    clean,
    find_funnel,
    lead_row,
    take_turns,
    upsert_key,
)
from nurture.spec.names import slugify
from nurture.store.decisions import candidates_id
from nurture.store.tables import Enrollment, Funnel, Lead, MatchDecision

FACTS = ("funnel_id", "source", "status", "temperature", "score")
"""What matching reads of a new lead: equal facts, equal decision."""


@dataclass(frozen=True)
class Arrival:
    data: LeadInput
    funnel: str

    def digest(self) -> str:
        """The SHA-256 of the lead as sent: a retry under the same Idempotency-Key must match."""
        text = json.dumps(asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class _New:
    index: int
    row: dict[str, Any]


def arrive_many(
    session: Session, arrivals: list[Arrival], now: datetime, rules: LeadRules
) -> list[Outcome | NurtureError]:
    """Each arrival's outcome, or the error that kept it out, in order."""
    results: dict[int, Outcome | NurtureError] = {}
    parsed = _parse(session, arrivals, now, rules, results)
    fresh, one_by_one = _split(session, parsed)
    outcomes = _insert(session, fresh, now, rules)
    results |= dict(zip([new.index for new in fresh], outcomes, strict=True))
    for index in one_by_one:
        results[index] = _alone(session, arrivals[index], now, rules)
    return [results[index] for index in range(len(arrivals))]


@dataclass
class _Parsed:
    index: int
    values: dict[str, Any]
    row: dict[str, Any]


def _parse(
    session: Session,
    arrivals: list[Arrival],
    now: datetime,
    rules: LeadRules,
    errors: dict[int, Outcome | NurtureError],
) -> list[_Parsed]:
    """Each arrival's column values and new-lead row; a bad one's error goes to `errors`."""
    funnels = {funnel.slug: funnel for funnel in session.exec(select(Funnel))}
    parsed = []
    for index, arrival in enumerate(arrivals):
        try:
            values = clean(arrival.data, rules.phone_region)
            funnel = funnels.get(slugify(arrival.funnel)) or find_funnel(session, arrival.funnel)
            parsed.append(_Parsed(index, values, lead_row(values, funnel.id, now, rules)))
        except NurtureError as problem:
            errors[index] = problem
    return parsed


def _split(session: Session, parsed: list[_Parsed]) -> tuple[list[_New], list[int]]:
    """New leads (set-based), and known leads or repeats in the batch (one by one)."""
    keys = [upsert_key(item.values) for item in parsed]
    take_turns(session, keys)  # until the commit: no other writer inserts these leads meanwhile
    known = _known_keys(session, [item.values for item in parsed])
    claimed: set[str] = set()
    fresh, one_by_one = [], []
    for item, key in zip(parsed, keys, strict=True):
        if key is not None and (key in known or key in claimed):
            one_by_one.append(item.index)
            continue
        if key is not None:
            claimed.add(key)
        fresh.append(_New(item.index, item.row))
    return fresh, one_by_one


def _known_keys(session: Session, batch: list[dict[str, Any]]) -> set[str]:
    """The upsert keys of the batch that name a stored lead."""
    ids = {v["external_id"] for v in batch if v.get("external_id")}
    emails = {v["email"] for v in batch if v.get("email") and not v.get("external_id")}
    known: set[str] = set()
    if ids:
        query = select(Lead.external_id).where(col(Lead.external_id).in_(ids))
        known |= {
            key for found in session.exec(query) if (key := upsert_key({"external_id": found}))
        }
    if emails:
        query = select(Lead.email).where(col(Lead.email).in_(emails))
        known |= {key for found in session.exec(query) if (key := upsert_key({"email": found}))}
    return known


def _alone(session: Session, arrival: Arrival, now: datetime, rules: LeadRules) -> Any:
    try:
        with session.begin_nested():
            return ingest(session, arrival.data, arrival.funnel, now, rules)
    except NurtureError as problem:
        return problem


def _insert(session: Session, fresh: list[_New], now: datetime, rules: LeadRules) -> list[Outcome]:
    """Insert the new leads, their decisions and enrollments: three statements."""
    if not fresh:
        return []
    connection = session.connection()
    returning = insert(Lead.__table__).returning(Lead.__table__.c.id, sort_by_parameter_order=True)
    ids = list(connection.execute(returning, [new.row for new in fresh]).scalars())
    offers: dict[int, list[Offer]] = {}
    decided: dict[tuple[Any, ...], tuple[dict[str, Any], Offer | None, str | None]] = {}
    decisions, enrollments, outcomes = [], [], []
    for new, lead_id in zip(fresh, ids, strict=True):
        facts = tuple(new.row[key] for key in FACTS)
        if facts not in decided:
            decided[facts] = _decide(session, new.row, offers, now)
        decision, winner, name = decided[facts]
        decisions.append(decision | {"lead_id": lead_id})
        outcome = Outcome(lead_id, True, name, decision["reason"])
        if winner is not None:
            zone = new.row["timezone"]
            enrollments.append(new_enrollment(lead_id, zone, winner, now, rules.default_zone))
            step, due = enrollments[-1]["step_id"], enrollments[-1]["next_run_at"]
            outcome = Outcome(lead_id, True, name, decision["reason"], step, due)
        outcomes.append(outcome)
    connection.execute(insert(MatchDecision.__table__), decisions)
    if enrollments:
        connection.execute(insert(Enrollment.__table__), enrollments)
    return outcomes


def _decide(
    session: Session, row: dict[str, Any], offers: dict[int, list[Offer]], now: datetime
) -> tuple[dict[str, Any], Offer | None, str | None]:
    funnel_id = row["funnel_id"]
    if funnel_id not in offers:
        offers[funnel_id] = funnel_offers(session, funnel_id)
    decision, winner = decide(offers[funnel_id], SimpleNamespace(**row))
    stored = {
        "funnel_id": funnel_id,
        "sequence_id": winner.sequence_id if winner else None,
        "reason": decision.reason,
        "candidates_id": candidates_id(
            session.connection(), candidates_json(decision, offers[funnel_id])
        ),
        "decided_at": now,
    }
    return stored, winner, decision.winner.name if decision.winner else None
