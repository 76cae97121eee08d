"""An import's new leads matched and enrolled as rows: equal facts, one shared decision.

A large import makes the same decision again and again (leads of one funnel with the same
source, status, temperature, score and arrival), and the same first-step time for every lead
of a sequence and time zone: each is worked out once and shared by the rows that have it.
"""

from datetime import datetime
from operator import itemgetter
from types import SimpleNamespace
from typing import Any

from sqlmodel import Session

from nurture.leads.enrollment import (
    Offer,
    candidates_json,
    decide,
    for_lead,
    funnel_offers,
    new_enrollment,
    split_offers,
)
from nurture.store.decisions import candidates_id

_FACTS = itemgetter("funnel_id", "source", "status", "temperature", "score", "created_at")
"""What matching reads of a new lead, and when: equal facts, one shared decision."""


class Matching:
    """The decision and enrollment rows of an import's new leads, with what they share: the
    funnels' offers, the decisions, the stored candidate lists and the first steps."""

    def __init__(self, session: Session, default_zone: str) -> None:
        self.session, self.default_zone = session, default_zone
        self.offers: dict[int, list[Offer]] = {}
        self.decisions: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.lists: dict[str, int] = {}  # stored candidate lists: digest to id
        self.enrollments: dict[tuple[int, str | None, datetime], dict[str, Any]] = {}

    def decision(self, row: dict[str, Any]) -> dict[str, Any]:
        """The decision row for a new lead (its `id` drawn) without its lead_id."""
        offers = self.funnel(row["funnel_id"])
        key = (_FACTS(row), split_offers(offers, row["id"])[1])  # a funnel's split draws too
        if key not in self.decisions:
            decision, winner = decide(offers, SimpleNamespace(**row), row["id"])
            self.decisions[key] = {
                "funnel_id": row["funnel_id"],
                "sequence_id": winner.sequence_id if winner else None,
                "reason": decision.reason,
                "candidates_id": candidates_id(
                    self.session.connection(), candidates_json(decision, offers), self.lists
                ),
                "decided_at": row["created_at"],
            }
        return self.decisions[key]

    def enrollment(self, sequence_id: int, row: dict[str, Any]) -> dict[str, Any]:
        """The enrollment row for a new lead; one first-step time per sequence and time zone."""
        key = (sequence_id, row["timezone"], row["created_at"])
        offer = next(o for o in self.funnel(row["funnel_id"]) if o.sequence_id == sequence_id)
        zone, default = row["timezone"], self.default_zone
        if key not in self.enrollments:
            self.enrollments[key] = new_enrollment(0, zone, offer, row["created_at"], default)
        return for_lead(self.enrollments[key], row["id"], zone, offer, default)

    def funnel(self, funnel_id: int) -> list[Offer]:
        """The funnel's offers (its sequences), read once."""
        if funnel_id not in self.offers:
            self.offers[funnel_id] = funnel_offers(self.session, funnel_id)
        return self.offers[funnel_id]
