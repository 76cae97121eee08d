"""Find leads as the dashboard asks: by id, external id, email, or the start of the name.

Each way is one indexed lookup (the name by migration 0016's `lower(name)` index, the email by
its own, lower-cased since migration 0010), never a scan of every lead.
"""

from typing import Any

from sqlalchemy import ColumnElement, func
from sqlmodel import Session, col, select

from nurture.errors import NotFound
from nurture.leads.fields import MAX_LENGTH, text_problem
from nurture.leads.views import funnel_names, lead_dict
from nurture.spec.names import numeric_id
from nurture.store.tables import Enrollment, Lead

LIMIT = 50


def search_leads(session: Session, text: str | None, limit: int = LIMIT) -> list[dict[str, Any]]:
    """The newest leads, or those `text` names: its id, external id or email exactly, then
    those whose email or name starts with it (by name); `limit` at most."""
    wanted = (text or "").strip()
    if wanted and (text_problem(wanted) or len(wanted) > MAX_LENGTH["email"]):
        return []  # names no lead (a NUL byte, a lone surrogate...): the store may choke on it
    if not wanted:
        found = list(session.exec(select(Lead).order_by(col(Lead.id).desc()).limit(limit)))
    else:
        found = _exact(session, wanted) + _starting(session, wanted.lower(), limit)
    unique = list({lead.id: lead for lead in found}.values())  # the first place each holds
    names = funnel_names(session)
    return [lead_dict(lead, names) for lead in unique[:limit]]


def _exact(session: Session, wanted: str) -> list[Lead]:
    number = numeric_id(wanted)
    by_id = session.get(Lead, number) if number is not None else None
    found = [by_id] if by_id else []
    for key in (col(Lead.external_id) == wanted, col(Lead.email) == wanted.lower()):
        found += session.exec(select(Lead).where(key).limit(5))  # one index each (OR: a scan)
    return found


def _starting(session: Session, prefix: str, limit: int) -> list[Lead]:
    name = _name_key(session)
    email = col(Lead.email)
    by_email = select(Lead).where(*_prefix(email, prefix)).order_by(email).limit(limit)
    by_name = select(Lead).where(*_prefix(name, prefix)).order_by(name).limit(limit)
    return [*session.exec(by_email), *session.exec(by_name)]


def _name_key(session: Session) -> ColumnElement[str]:
    """lower(name) as migration 0016's index holds it (in the "C" collation on Postgres)."""
    key = func.lower(col(Lead.name))
    return key.collate("C") if session.get_bind().dialect.name == "postgresql" else key


def _prefix(column: Any, prefix: str) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    """`column` starts with `prefix`, as a range an index reads."""
    after = prefix[:-1] + chr(min(ord(prefix[-1]) + 1, 0x10FFFF))
    return column >= prefix, column < after


def enrollment_of(session: Session, lead_id: int, enrollment_id: int) -> Enrollment:
    """The lead's enrollment with this id; NotFound when it is another lead's (or none)."""
    row = session.get(Enrollment, enrollment_id)
    if row is None or row.lead_id != lead_id:
        raise NotFound(f"lead {lead_id} has no enrollment {enrollment_id}")
    return row
