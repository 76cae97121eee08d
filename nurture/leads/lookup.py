"""Finding a funnel or a lead by what a user types, and the stored lead an upsert updates."""

from collections.abc import Iterable
from typing import Any

from sqlmodel import Session, col, select

from nurture.errors import AmbiguousLead, NotFound
from nurture.leads import identity
from nurture.leads.fields import MAX_LENGTH, shown, text_problem
from nurture.rules.contacts import ContactError, normalize_email, normalize_phone
from nurture.spec.diagnostics import did_you_mean
from nurture.spec.names import numeric_id, slugify
from nurture.store import keys as store_keys
from nurture.store import locks
from nurture.store.tables import Funnel, Lead


def find_funnel(session: Session, name: str) -> Funnel:
    """The funnel with this name or slug; NotFound lists the known ones."""
    found = session.exec(select(Funnel).where(Funnel.slug == slugify(name))).first()
    if found is None:
        names = list(session.exec(select(Funnel.name).order_by(Funnel.name)))
        known = ", ".join(names) if names else "none yet (a sequence's `funnels:` creates them)"
        raise NotFound(f"no funnel {name!r}{did_you_mean(name, names)}; known funnels: {known}")
    return found


def find_lead(session: Session, ref: str) -> Lead:
    """The lead with this id, external id (any it came with), email or phone; AmbiguousLead
    when the email or phone names several (duplicates to merge), never one picked silently."""
    ref = ref.strip()
    if text_problem(ref) or len(ref) > MAX_LENGTH["email"]:  # names no lead; the store may choke
        raise NotFound(f"no lead {shown(ref)} (give its id, external id or email)")
    number = numeric_id(ref)
    lead = session.get(Lead, number) if number is not None else None
    if lead is not None:
        return lead
    wanted = [("external_id", ref), ("email", _email_key(ref))]
    wanted += [("phone", phone)] if (phone := _phone_key(ref)) else []
    leads = identity.holders(session, wanted)
    if len(leads) > 1:
        named = ", ".join(f"{lead.id} {lead.name}" for lead in leads)
        ids = " ".join(str(lead.id) for lead in leads)
        raise AmbiguousLead(
            f"{ref!r} names {len(leads)} leads: {named}; give an id, or merge them "
            f"(nurture leads merge {ids})"
        )
    if not leads:
        raise NotFound(f"no lead {ref!r} (give its id, external id or email)")
    return leads[0]


def by_contact(session: Session, kind: str, value: str) -> Lead | None:
    """The lead a normalised email or phone belongs to: the key's holder, else (identity without
    that kind of key) the first lead with it; None when no lead has it."""
    held = store_keys.owners(session.connection(), [(kind, value)])
    lead = session.get(Lead, held[(kind, value)]) if held else None
    column = Lead.email if kind == "email" else Lead.phone
    query = select(Lead).where(col(column) == value).order_by(col(Lead.id))
    return lead or session.exec(query).first()


def _email_key(text: str) -> str:
    try:
        return normalize_email(text)
    except ContactError:
        return text


def _phone_key(text: str) -> str | None:
    if not text.startswith("+"):
        return None
    try:
        return normalize_phone(text)
    except ContactError:
        return None


def upsert_key(values: dict[str, Any]) -> str | None:
    """What `existing_lead` finds a stored lead by: `external_id:X`, else `email:Y`."""
    if values.get("external_id"):
        return f"external_id:{values['external_id']}"
    return f"email:{values['email']}" if values.get("email") else None


def take_turns(session: Session, keys: Iterable[str | None]) -> None:
    """Writers of the same upsert keys take turns, so a lookup then insert cannot race another."""
    locks.hold(session.connection(), (f"lead {key}" for key in keys if key))


def existing_lead(session: Session, values: dict[str, Any]) -> Lead | None:
    """The stored lead these values name: by external id, else by email."""
    if values.get("external_id"):
        query = select(Lead).where(Lead.external_id == values["external_id"])
        return session.exec(query).first()
    if values.get("email"):
        return session.exec(select(Lead).where(Lead.email == values["email"])).first()
    return None
