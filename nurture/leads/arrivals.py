"""Many leads arriving at once (concurrent webhook calls), stored in one transaction, set-based.

New leads are inserted, matched and enrolled with a few statements for the whole batch (the
sequences of a funnel parsed once, one decision per distinct set of trigger facts). Leads
the store knows already, and repeats within the batch, go one by one through `ingest`, as
`nurture leads add` would take them. A bad arrival fails alone; the others land.
"""

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlmodel import Session, select

from nurture.errors import NurtureError
from nurture.leads import identity
from nurture.leads.enrollment import (
    Offer,
    Specs,
    candidates_json,
    decide,
    for_lead,
    funnel_offers,
    new_enrollment,
    split_offers,
)
from nurture.leads.ingest import Outcome, ingest
from nurture.leads.records import (
    LeadInput,
    LeadRules,
    clean,
    find_funnel,
    lead_row,
    take_turns,
)
from nurture.spec.names import slugify
from nurture.store import bulk
from nurture.store import keys as store_keys
from nurture.store.decisions import candidates_id
from nurture.store.keys import Key
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


Decided = tuple[dict[str, Any], Offer | None, str | None]
"""A decision's row (without its lead and time), the winning offer and its name."""
MOST_KEPT = 10_000


@dataclass
class Kept:
    """What the batches of one store share: parsed sequence versions, and the decisions (with
    their stored candidate lists) of committed batches; a batch adds to a copy (`for_batch`),
    which its caller keeps once the batch commits."""

    specs: Specs = field(default_factory=dict)
    lists: dict[str, int] = field(default_factory=dict)
    decisions: dict[tuple[Any, ...], Decided] = field(default_factory=dict)

    def for_batch(self) -> "Kept":
        if len(self.lists) + len(self.decisions) > MOST_KEPT:
            return Kept(self.specs)
        return Kept(self.specs, dict(self.lists), dict(self.decisions))


@dataclass
class _New:
    index: int
    row: dict[str, Any]
    keys: list[Key]


def arrive_many(
    session: Session,
    arrivals: list[Arrival],
    now: datetime,
    rules: LeadRules,
    kept: Kept | None = None,
) -> list[Outcome | NurtureError]:
    """Each arrival's outcome, or the error that kept it out, in order."""
    results: dict[int, Outcome | NurtureError] = {}
    parsed = _parse(session, arrivals, now, rules, results)
    fresh, one_by_one = _split(session, parsed, rules.identity)
    outcomes = _insert(session, fresh, now, rules, kept or Kept())
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


def _split(
    session: Session, parsed: list[_Parsed], kinds: tuple[str, ...]
) -> tuple[list[_New], list[int]]:
    """New leads (set-based), and known leads or repeats in the batch (one by one)."""
    keys = [identity.keys_of(item.values, kinds) for item in parsed]
    # until the commit: no other webhook writer inserts these leads meanwhile (an import's
    # claim waits on the keys' unique index instead)
    take_turns(session, (name for item in parsed for name in identity.lock_names(item.values)))
    known = _known_keys(session, [key for its in keys for key in its])
    claimed: set[Key] = set()
    fresh, one_by_one = [], []
    for item, its in zip(parsed, keys, strict=True):
        if any(key in known or key in claimed for key in its):
            one_by_one.append(item.index)
            continue
        claimed.update(its)
        fresh.append(_New(item.index, item.row, its))
    return fresh, one_by_one


def _known_keys(session: Session, keys: list[Key]) -> dict[Key, int]:
    """The keys of the batch a stored lead holds, and its id (Core, one bound list a kind)."""
    return store_keys.owners(session.connection(), keys)


def _alone(session: Session, arrival: Arrival, now: datetime, rules: LeadRules) -> Any:
    try:
        with session.begin_nested():
            return ingest(session, arrival.data, arrival.funnel, now, rules)
    except NurtureError as problem:
        return problem


def _insert(
    session: Session, fresh: list[_New], now: datetime, rules: LeadRules, kept: Kept
) -> list[Outcome]:
    """Insert the new leads, then their keys, decisions and enrollments (one statement on
    Postgres)."""
    if not fresh:
        return []
    connection = session.connection()  # at the driver (store.bulk), as an import inserts
    ids = bulk.insert_ids(connection, Lead.__table__, [new.row for new in fresh])
    keys = [
        row
        for new, i in zip(fresh, ids, strict=True)
        for row in store_keys.rows_for(i, new.keys, now)
    ]
    offers: dict[int, _Offers] = {}
    firsts: dict[tuple[int, str | None], dict[str, Any]] = {}
    decisions, enrollments, outcomes = [], [], []
    for new, lead_id in zip(fresh, ids, strict=True):
        decision, winner, name = _decide(session, new.row, offers, kept, lead_id)
        decisions.append(decision | {"lead_id": lead_id, "decided_at": now})
        outcome = Outcome(lead_id, True, name, decision["reason"])
        if winner is not None:
            zone = new.row["timezone"]
            if (winner.sequence_id, zone) not in firsts:  # one first-step time per zone
                first = new_enrollment(0, zone, winner, now, rules.default_zone)
                firsts[(winner.sequence_id, zone)] = first
            shared = firsts[(winner.sequence_id, zone)]
            enrollments.append(for_lead(shared, lead_id, zone, winner, rules.default_zone))
            step, due = enrollments[-1]["step_id"], enrollments[-1]["next_run_at"]
            outcome = Outcome(lead_id, True, name, decision["reason"], step, due)
        outcomes.append(outcome)
    # one statement on Postgres; a key a concurrent writer (an import) holds: IntegrityError,
    # and the batch is retried
    bulk.insert_all(
        connection,
        [
            store_keys.part(keys),
            (MatchDecision.__table__, decisions),
            (Enrollment.__table__, enrollments),
        ],
    )
    return outcomes


@dataclass(frozen=True)
class _Offers:
    offers: list[Offer]
    signature: tuple[Any, ...]
    """What a decision depends on besides the lead's facts: equal signatures, equal decisions."""

    @classmethod
    def of(cls, offers: list[Offer]) -> "_Offers":
        signature = tuple(
            (o.sequence_id, o.version, o.candidate.name, o.candidate.priority, o.candidate.active)
            for o in offers
        )
        return cls(offers, signature)


def _decide(
    session: Session, row: dict[str, Any], offers: dict[int, _Offers], kept: Kept, lead_id: int
) -> Decided:
    """The decision for a new lead: the funnel's offers read once a batch (a sequence applied
    meanwhile counts at once), and decided once for equal facts and offers."""
    funnel_id = row["funnel_id"]
    if funnel_id not in offers:
        offers[funnel_id] = _Offers.of(funnel_offers(session, funnel_id, kept.specs))
    listed = offers[funnel_id].offers
    drawn = split_offers(listed, lead_id)[1]  # a funnel's split: the sequence drawn decides too
    key = (offers[funnel_id].signature, drawn, *(row[fact] for fact in FACTS))
    if key not in kept.decisions:
        decision, winner = decide(listed, SimpleNamespace(**row), lead_id)
        stored = {
            "funnel_id": funnel_id,
            "sequence_id": winner.sequence_id if winner else None,
            "reason": decision.reason,
            "candidates_id": candidates_id(
                session.connection(), candidates_json(decision, listed), kept.lists
            ),
        }
        kept.decisions[key] = (stored, winner, decision.winner.name if decision.winner else None)
    return kept.decisions[key]
