"""Leads: added (matched and enrolled at once), updated and converted.

The data given is checked in leads.values, leads are found by leads.lookup and shown by
leads.views; their names are importable from here too, as they were when this was one module.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from nurture.errors import Conflict, InvalidLead
from nurture.leads import engagement, identity
from nurture.leads.enrollment import enroll, stop_enrollments_on_conversion
from nurture.leads.identity import Clash
from nurture.leads.lookup import (
    existing_lead,
    find_funnel,
    find_lead,
    take_turns,
    upsert_key,
)
from nurture.leads.values import TEXT_FIELDS, LeadInput, LeadRules, clean
from nurture.leads.views import funnel_names, lead_details, lead_dict, list_leads
from nurture.rules.matching import Decision
from nurture.store import keys as store_keys
from nurture.store.tables import Enrollment, Lead

__all__ = [
    "Arrival",
    "InvalidLead",
    "LeadInput",
    "LeadRules",
    "add_lead",
    "changed",
    "clean",
    "convert",
    "existing_lead",
    "find_funnel",
    "find_lead",
    "funnel_names",
    "lead_details",
    "lead_dict",
    "lead_row",
    "list_leads",
    "set_values",
    "take_turns",
    "update_lead",
    "upsert_key",
]


NEW_LEAD: dict[str, Any] = dict.fromkeys(("email", "phone", "timezone", *TEXT_FIELDS))
NEW_LEAD |= {"score": 0, "tags": [], "fields": {}, "opted_out": [], "last_inbound_at": None}


def lead_row(
    values: dict[str, Any], funnel_id: int | None, now: datetime, rules: LeadRules
) -> dict[str, Any]:
    """The column values of a new lead (converted already when its status says so)."""
    if "name" not in values:
        raise InvalidLead("name is missing", "name")
    converted = now if rules.converts(values.get("status")) else None
    return (
        NEW_LEAD
        | values
        | {
            "funnel_id": funnel_id,
            "created_at": now,
            "updated_at": now,
            "converted_at": converted,
        }
    )


def changed(lead: Lead, values: dict[str, Any]) -> dict[str, Any]:
    """The values that differ from the lead's (fields merge, tags add)."""
    merged = dict(values)
    if "fields" in merged:
        merged["fields"] = lead.fields | merged["fields"]
    if "tags" in merged:
        merged["tags"] = list(dict.fromkeys([*lead.tags, *merged["tags"]]))
    return {key: value for key, value in merged.items() if getattr(lead, key) != value}


def set_values(
    session: Session, lead: Lead, values: dict[str, Any], now: datetime, rules: LeadRules
) -> bool:
    """Write the changed values; a status that converts converts the lead. True when changed."""
    diff = changed(lead, values)
    for key, value in diff.items():
        setattr(lead, key, value)
    if diff:
        lead.updated_at = now
        session.add(lead)
    if "status" in diff and rules.converts(lead.status) and lead.converted_at is None:
        convert(session, lead, now, rules)
    return bool(diff)


@dataclass(frozen=True)
class Arrival:
    """A lead added through a funnel: stored (created or updated) and matched; `clashes`: its
    keys that other leads hold (left out, reported)."""

    lead: Lead
    created: bool
    decision: Decision
    enrollment: Enrollment | None
    clashes: tuple[Clash, ...] = ()


def add_lead(
    session: Session, data: LeadInput, funnel: str, now: datetime, rules: LeadRules
) -> Arrival:
    """Store the lead (the one any of its keys names, else a new one), then match and enroll it."""
    found = find_funnel(session, funnel)
    values = clean(data, rules.phone_region)
    take_turns(session, identity.lock_names(values))
    match = identity.identify(session, values, rules.identity)
    lead, keyed = match.lead, identity.unclashed(values, match.clashes)
    created = lead is None
    if lead is None:
        lead = Lead(**lead_row(keyed, found.id, now, rules))
        session.add(lead)
    else:
        stored = identity.applicable(lead, keyed, ())
        set_values(session, lead, stored | {"funnel_id": found.id}, now, rules)
    session.flush()
    identity.remember(session.connection(), lead.id, keyed, now, rules.identity, new=created)
    decision = enroll(session, lead, now, rules.default_zone)
    enrolled = None
    if decision.winner is not None:
        query = select(Enrollment).where(Enrollment.lead_id == lead.id)
        enrolled = session.exec(query.order_by(col(Enrollment.id).desc())).first()
    return Arrival(lead, created, decision, enrolled, match.clashes)


def update_lead(
    session: Session,
    ref: str,
    data: LeadInput,
    now: datetime,
    rules: LeadRules,
    untag: Iterable[str] = (),
) -> Lead:
    """Change a lead's data; tags add, `untag` removes, fields merge."""
    lead = find_lead(session, ref)
    values = clean(data, rules.phone_region)
    _refuse_taken(session, lead, values, now)
    set_values(session, lead, values, now, rules)
    gone = {tag.casefold() for tag in untag}
    if gone:
        lead.tags = [tag for tag in lead.tags if tag.casefold() not in gone]
        lead.updated_at = now
        session.add(lead)
    session.flush()
    return lead


def _refuse_taken(session: Session, lead: Lead, values: dict[str, Any], now: datetime) -> None:
    """Conflict when another lead has this external id, email or phone: lookups by it would be
    ambiguous; else the new values become keys of the lead too."""
    changing = {
        key: wanted
        for key in identity.KINDS
        if (wanted := values.get(key)) is not None and wanted != getattr(lead, key)
    }
    take_turns(session, identity.lock_names(changing))
    for other in identity.holders(session, identity.keys_of(changing)):
        if other.id != lead.id:
            key = next(k for k in changing if changing[k] in _keys_of(session, other))
            what = key.replace("_", " ")
            raise Conflict(
                f"{what} {changing[key]!r} belongs to lead {other.id} ({other.name})", key
            )
    identity.remember(session.connection(), lead.id, changing, now, identity.KINDS, new=False)


def _keys_of(session: Session, lead: Lead) -> set[str]:
    """Every value the lead is known by (its columns and its keys)."""
    held = {value for _, value in store_keys.of_lead(session.connection(), lead.id)}
    return held | {value for key in identity.KINDS if (value := getattr(lead, key))}


def convert(session: Session, lead: Lead, now: datetime, rules: LeadRules) -> list[int]:
    """Mark the lead converted and stop its enrollments that stop on conversion; their ids."""
    if not rules.converts(lead.status) and rules.conversion_statuses:
        lead.status = rules.conversion_statuses[0]
    first = lead.converted_at is None
    lead.converted_at = lead.converted_at or now
    lead.updated_at = now
    session.add(lead)
    session.flush()
    if first:
        engagement.converted(session.connection(), lead.id, now)
    return stop_enrollments_on_conversion(session, lead, now)
