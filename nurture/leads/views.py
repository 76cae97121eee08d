"""Leads as the CLI and the API show them: listed, and one with its enrollments and executions."""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from nurture.leads import engagement
from nurture.leads.lookup import find_funnel
from nurture.leads.replies import replies_of
from nurture.rules.engagement import Scoring
from nurture.store import keys as store_keys
from nurture.store.tables import Enrollment, Execution, Funnel, Lead, Sequence


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


def lead_details(
    session: Session, lead: Lead, now: datetime | None = None, scoring: Scoring | None = None
) -> dict[str, Any]:
    """The lead, its enrollments (with the next due step), every execution, and its engagement
    (its events and their score at `now`, the wall clock when not given)."""
    names = dict(session.exec(select(Sequence.id, Sequence.name)).all())
    enrollments = session.exec(
        select(Enrollment).where(col(Enrollment.lead_id) == lead.id).order_by(col(Enrollment.id))
    ).all()
    executions = session.exec(
        select(Execution).where(col(Execution.lead_id) == lead.id).order_by(col(Execution.id))
    ).all()
    shown = [_enrollment_dict(e, names) for e in enrollments]
    due = [e for e in shown if e["status"] == "active" and e["next_run_at"] is not None]
    upcoming = min(due, key=lambda e: e["next_run_at"], default=None)
    keys = store_keys.of_lead(session.connection(), lead.id)
    return (
        lead_dict(lead, funnel_names(session))
        | {
            "keys": [f"{kind}:{value}" for kind, value in keys],
            "replies": replies_of(session, lead.id),
            "enrollments": shown,
            "executions": [_execution_dict(x, names) for x in executions],
            "next": upcoming and {k: upcoming[k] for k in ("sequence", "step_id", "next_run_at")},
        }
        | engagement.summary(session.connection(), lead.id, now or datetime.now(UTC), scoring)
    )


def _enrollment_dict(row: Enrollment, names: dict[int, str]) -> dict[str, Any]:
    keep = ("id", "version", "status", "step_id", "next_run_at", "attempts", "enrolled_at")
    data = {key: getattr(row, key) for key in keep}
    data |= {"finished_at": row.finished_at, "exit_reason": row.exit_reason}
    return data | {"sequence": names.get(row.sequence_id)}


EXECUTION_KEYS: tuple[str, ...] = (
    "enrollment_id",
    "step_id",
    "action_type",
    "attempt",
    "status",
    "due_at",
)
EXECUTION_KEYS += ("started_at", "finished_at", "error")


def _execution_dict(row: Execution, names: dict[int, str]) -> dict[str, Any]:
    data = {key: getattr(row, key) for key in EXECUTION_KEYS}
    return data | {"sequence": names.get(row.sequence_id)}
