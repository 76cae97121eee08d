"""Leads: added (matched and enrolled at once), updated, converted, listed and shown."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from nurture.errors import Conflict, InvalidLead, NotFound
from nurture.leads.enrollment import enroll, stop_enrollments_on_conversion
from nurture.leads.fields import (
    MAX_LENGTH,
    MOST_TAGS,
    PHONE_AS_GIVEN,
    SCORE_DIGITS,
    TAG_LENGTH,
    check_field,
    check_text,
    shown,
    text_problem,
)
from nurture.rules.contacts import ContactError, first_name, normalize_email, normalize_phone
from nurture.rules.matching import Decision
from nurture.settings import Settings
from nurture.spec.diagnostics import did_you_mean
from nurture.spec.names import numeric_id, slugify
from nurture.spec.window import check_time_zone
from nurture.store import locks
from nurture.store.tables import Enrollment, Execution, Funnel, Lead, Sequence


@dataclass(frozen=True)
class LeadRules:
    """The project settings leads follow."""

    default_zone: str = "UTC"
    conversion_statuses: tuple[str, ...] = ("Converted", "Won", "Client")
    phone_region: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> "LeadRules":
        return cls(settings.timezone, tuple(settings.conversion_statuses), settings.phone_region)

    def converts(self, status: str | None) -> bool:
        """True when the status counts as converted (case ignored)."""
        wanted = {s.casefold() for s in self.conversion_statuses}
        return status is not None and status.casefold() in wanted


@dataclass
class LeadInput:
    """A lead's data as given (CLI, import row); None means not given."""

    name: str | None = None
    email: str | None = None
    phone: str | None = None
    source: str | None = None
    status: str | None = None
    temperature: str | None = None
    score: int | str | None = None
    tags: list[str] | None = None
    timezone: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    external_id: str | None = None


TEXT_FIELDS = ("source", "status", "temperature", "external_id")


def clean(data: LeadInput, phone_region: str | None = None) -> dict[str, Any]:
    """Column values of the fields given, validated and normalised; InvalidLead says what is wrong."""
    _check_given(data)
    values: dict[str, Any] = {}
    if data.name is not None:
        if not data.name.strip():
            raise InvalidLead("name is empty", "name")
        values["name"] = data.name.strip()
        # derived, so cut to its column: a one-word name may be longer than first_name's
        values["first_name"] = first_name(values["name"])[: MAX_LENGTH["first_name"]]
    if data.email:
        values["email"] = _contact("email", normalize_email, data.email)
    if data.phone:
        values["phone"] = _contact(
            "phone", partial(normalize_phone, region=phone_region), data.phone
        )
    values |= {key: getattr(data, key).strip() for key in TEXT_FIELDS if getattr(data, key)}
    if data.score is not None and data.score != "":
        values["score"] = _score(data.score)
    if data.timezone:
        values["timezone"] = _zone(data.timezone.strip())
    if data.tags is not None:
        values["tags"] = list(dict.fromkeys(t.strip() for t in data.tags if t.strip()))
    if data.fields:
        values["fields"] = dict(data.fields)
    return values


def _contact(field: str, normalize: Callable[[str], str], text: str) -> str:
    try:
        return normalize(text)
    except ContactError as error:
        raise InvalidLead(str(error), field) from None


_CHECKED = ("name", "email", "timezone", *TEXT_FIELDS)


def _check_given(data: LeadInput) -> None:
    """Every text given can be stored: none holds a NUL or a lone surrogate or is over its limit."""
    for key in _CHECKED:
        if (text := getattr(data, key)) is not None:
            check_text(key, text.strip())
    if data.phone is not None:
        check_text("phone", data.phone.strip(), PHONE_AS_GIVEN)
    if data.tags is not None and len(data.tags) > MOST_TAGS:
        raise InvalidLead(f"{len(data.tags):,} tags, over the limit of {MOST_TAGS}", "tags")
    for tag in data.tags or []:
        check_text("tags", tag.strip(), TAG_LENGTH, "tag", quoted=True)
    for name, value in data.fields.items():
        check_field(name, value)


def _score(value: int | str) -> int:
    text = value.strip() if isinstance(value, str) else str(value)
    try:
        if len(text) > SCORE_DIGITS:  # not a score (and int() refuses 5,000 digits anyway)
            raise ValueError(text)
        score = int(text)
    except ValueError:
        raise InvalidLead(f"score {shown(text)} is not a whole number", "score") from None
    if not 0 <= score <= 100:
        raise InvalidLead(f"score {score} is out of range 0-100", "score")
    return score


def _zone(name: str) -> str:
    try:
        return check_time_zone(name)
    except ValueError as error:
        raise InvalidLead(f"time zone: {error}", "timezone") from None


def find_funnel(session: Session, name: str) -> Funnel:
    """The funnel with this name or slug; NotFound lists the known ones."""
    found = session.exec(select(Funnel).where(Funnel.slug == slugify(name))).first()
    if found is None:
        names = list(session.exec(select(Funnel.name).order_by(Funnel.name)))
        known = ", ".join(names) if names else "none yet (a sequence's `funnels:` creates them)"
        raise NotFound(f"no funnel {name!r}{did_you_mean(name, names)}; known funnels: {known}")
    return found


def find_lead(session: Session, ref: str) -> Lead:
    """The lead with this id, external id or email."""
    ref = ref.strip()
    if text_problem(ref) or len(ref) > MAX_LENGTH["email"]:  # names no lead; the store may choke
        raise NotFound(f"no lead {shown(ref)} (give its id, external id or email)")
    number = numeric_id(ref)
    lead = session.get(Lead, number) if number is not None else None
    lead = lead or session.exec(select(Lead).where(Lead.external_id == ref)).first()
    lead = lead or session.exec(select(Lead).where(Lead.email == _email_key(ref))).first()
    if lead is None:
        raise NotFound(f"no lead {ref!r} (give its id, external id or email)")
    return lead


def _email_key(text: str) -> str:
    try:
        return normalize_email(text)
    except ContactError:
        return text


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
    """A lead added through a funnel: stored (created or updated) and matched."""

    lead: Lead
    created: bool
    decision: Decision
    enrollment: Enrollment | None


def add_lead(
    session: Session, data: LeadInput, funnel: str, now: datetime, rules: LeadRules
) -> Arrival:
    """Store the lead (upsert by external id, else email), then match and enroll it."""
    found = find_funnel(session, funnel)
    values = clean(data, rules.phone_region)
    take_turns(session, [upsert_key(values)])
    lead = existing_lead(session, values)
    created = lead is None
    if lead is None:
        lead = Lead(**lead_row(values, found.id, now, rules))
        session.add(lead)
    else:
        set_values(session, lead, values | {"funnel_id": found.id}, now, rules)
    session.flush()
    decision = enroll(session, lead, now, rules.default_zone)
    enrolled = None
    if decision.winner is not None:
        query = select(Enrollment).where(Enrollment.lead_id == lead.id)
        enrolled = session.exec(query.order_by(col(Enrollment.id).desc())).first()
    return Arrival(lead, created, decision, enrolled)


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
    _refuse_taken(session, lead, values)
    set_values(session, lead, values, now, rules)
    gone = {tag.casefold() for tag in untag}
    if gone:
        lead.tags = [tag for tag in lead.tags if tag.casefold() not in gone]
        lead.updated_at = now
        session.add(lead)
    session.flush()
    return lead


def _refuse_taken(session: Session, lead: Lead, values: dict[str, Any]) -> None:
    """Conflict when another lead has this external id or email: lookups by it would be ambiguous."""
    for key in ("external_id", "email"):
        wanted = values.get(key)
        if wanted is None or wanted == getattr(lead, key):
            continue
        take_turns(session, [upsert_key({key: wanted})])
        query = select(Lead).where(getattr(Lead, key) == wanted, Lead.id != lead.id)
        if (other := session.exec(query).first()) is not None:
            what = key.replace("_", " ")
            raise Conflict(f"{what} {wanted!r} belongs to lead {other.id} ({other.name})", key)


def convert(session: Session, lead: Lead, now: datetime, rules: LeadRules) -> list[int]:
    """Mark the lead converted and stop its enrollments that stop on conversion; their ids."""
    if not rules.converts(lead.status) and rules.conversion_statuses:
        lead.status = rules.conversion_statuses[0]
    lead.converted_at = lead.converted_at or now
    lead.updated_at = now
    session.add(lead)
    session.flush()
    return stop_enrollments_on_conversion(session, lead, now)


def list_leads(
    session: Session,
    *,
    funnel: str | None = None,
    status: str | None = None,
    source: str | None = None,
    tag: str | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Leads, newest first, filtered (case ignored)."""
    query = select(Lead).order_by(col(Lead.id).desc())
    if funnel:
        query = query.where(Lead.funnel_id == find_funnel(session, funnel).id)
    for column, wanted in ((Lead.status, status), (Lead.source, source)):
        if wanted:
            query = query.where(func.lower(column) == wanted.lower())
    names = funnel_names(session)
    out: list[dict[str, Any]] = []
    for lead in session.exec(query):
        if tag and tag.casefold() not in {t.casefold() for t in lead.tags}:
            continue
        out.append(lead_dict(lead, names))
        if len(out) >= limit:
            break
    return out


def funnel_names(session: Session) -> dict[int, str]:
    return dict(session.exec(select(Funnel.id, Funnel.name)).all())


def lead_dict(lead: Lead, funnels: dict[int, str]) -> dict[str, Any]:
    """A lead as the CLI shows it."""
    data = {f: getattr(lead, f) for f in Lead.model_fields if f != "funnel_id"}
    return data | {"funnel": funnels.get(lead.funnel_id) if lead.funnel_id else None}


def lead_details(session: Session, lead: Lead) -> dict[str, Any]:
    """The lead, its enrollments (with the next due step) and every execution."""
    names = dict(session.exec(select(Sequence.id, Sequence.name)).all())
    enrollments = session.exec(
        select(Enrollment).where(Enrollment.lead_id == lead.id).order_by(Enrollment.id)
    ).all()
    executions = session.exec(
        select(Execution).where(Execution.lead_id == lead.id).order_by(Execution.id)
    ).all()
    shown = [_enrollment_dict(e, names) for e in enrollments]
    due = [e for e in shown if e["status"] == "active" and e["next_run_at"] is not None]
    upcoming = min(due, key=lambda e: e["next_run_at"], default=None)
    return lead_dict(lead, funnel_names(session)) | {
        "enrollments": shown,
        "executions": [_execution_dict(x, names) for x in executions],
        "next": upcoming and {k: upcoming[k] for k in ("sequence", "step_id", "next_run_at")},
    }


def _enrollment_dict(row: Enrollment, names: dict[int, str]) -> dict[str, Any]:
    keep = ("id", "version", "status", "step_id", "next_run_at", "attempts", "enrolled_at")
    data = {key: getattr(row, key) for key in keep}
    data |= {"finished_at": row.finished_at, "exit_reason": row.exit_reason}
    return data | {"sequence": names.get(row.sequence_id)}


EXECUTION_KEYS = ("enrollment_id", "step_id", "action_type", "attempt", "status", "due_at")
EXECUTION_KEYS += ("started_at", "finished_at", "error")


def _execution_dict(row: Execution, names: dict[int, str]) -> dict[str, Any]:
    data = {key: getattr(row, key) for key in EXECUTION_KEYS}
    return data | {"sequence": names.get(row.sequence_id)}
