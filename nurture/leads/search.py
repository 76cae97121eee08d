"""Find leads as the dashboard asks: by a piece of their name, email or phone, newest first."""

from typing import Any

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from nurture.errors import NotFound
from nurture.leads.views import funnel_names, lead_dict
from nurture.store.tables import Enrollment, Lead

LIMIT = 50


def search_leads(session: Session, text: str | None, limit: int = LIMIT) -> list[dict[str, Any]]:
    """The newest leads (`limit` of them) whose name, email, phone or external id holds `text`."""
    query = select(Lead).order_by(col(Lead.id).desc()).limit(limit)
    wanted = (text or "").strip().lower()
    if wanted:
        pattern = "%" + wanted.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        columns = (Lead.name, Lead.email, Lead.phone, Lead.external_id)
        query = query.where(or_(*(func.lower(c).like(pattern, escape="\\") for c in columns)))
    names = funnel_names(session)
    return [lead_dict(lead, names) for lead in session.exec(query)]


def enrollment_of(session: Session, lead_id: int, enrollment_id: int) -> Enrollment:
    """The lead's enrollment with this id; NotFound when it is another lead's (or none)."""
    row = session.get(Enrollment, enrollment_id)
    if row is None or row.lead_id != lead_id:
        raise NotFound(f"lead {lead_id} has no enrollment {enrollment_id}")
    return row
