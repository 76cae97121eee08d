"""Leads: search; a lead's page (what `explain` says, its messages with their text, its replies)
with buttons to pause, resume, advance or stop an enrollment and to mark the lead converted."""

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import Path, Query, Request, Response

from nurture.engine import control
from nurture.insights.explain import explain
from nurture.insights.outbox import OutboxFilter, recent
from nurture.leads import consent
from nurture.leads.lookup import find_lead
from nurture.leads.records import LeadRules, convert
from nurture.leads.search import enrollment_of, search_leads
from nurture.web.pages import Ctx, Editor, Nav, Viewer, WebContext, page_router, record, render

router = page_router()
NAV = Nav("Leads", "/leads", 40)
LeadId = Annotated[int, Path(ge=1, le=2**63 - 1)]
Action = Literal["pause", "resume", "advance", "stop"]
ACTIONS = {
    "pause": control.pause,
    "resume": control.resume,
    "advance": control.advance,
    "stop": control.stop,
}
DONE = {"pause": "paused", "resume": "resumed", "advance": "advanced", "stop": "stopped"}


@router.get("/leads")
def leads_page(
    request: Request,
    ctx: Ctx,
    visitor: Viewer,
    q: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    with ctx.store.session() as session:
        leads = search_leads(session, q)
    template = (
        "_lead_rows.html" if request.headers.get("HX-Target") == "lead-rows" else "leads.html"
    )
    return render(request, template, leads=leads, q=q or "")


@router.get("/leads/{lead_id}")
def lead_page(request: Request, ctx: Ctx, visitor: Viewer, lead_id: LeadId) -> Response:
    return _lead(request, ctx, lead_id)


def _lead(request: Request, ctx: WebContext, lead_id: int, message: str | None = None) -> Response:
    with ctx.store.session() as session:
        lead = find_lead(session, str(lead_id))
        data = explain(session, str(lead.id), ctx.settings.timezone)
        messages = recent(session, OutboxFilter(lead_id=lead.id), limit=100)
        replies = consent.history(session, lead)
    template = "_lead_body.html" if request.headers.get("HX-Request") else "lead.html"
    return render(request, template, data=data, messages=messages, replies=replies, flash=message)


@router.post("/leads/{lead_id}/enrollments/{enrollment_id}/{action}")
def control_enrollment(
    request: Request,
    ctx: Ctx,
    visitor: Editor,
    lead_id: LeadId,
    enrollment_id: LeadId,
    action: Action,
) -> Response:
    """Pause, resume, advance or stop one of this lead's enrollments (logged as the CLI's are)."""
    with ctx.store.session(immediate=True) as session:
        enrollment_of(session, lead_id, enrollment_id)
        ACTIONS[action](session, enrollment_id, datetime.now(UTC))
    said = f"enrollment {enrollment_id} {DONE[action]}"
    return _lead(request, ctx, lead_id, record(ctx, visitor, action, f"lead {lead_id}", said))


@router.post("/leads/{lead_id}/convert")
def convert_lead(request: Request, ctx: Ctx, visitor: Editor, lead_id: LeadId) -> Response:
    """Mark the lead converted: the enrollments whose sequence stops on conversion stop."""
    with ctx.store.session(immediate=True) as session:
        lead = find_lead(session, str(lead_id))
        stopped = convert(session, lead, datetime.now(UTC), LeadRules.from_settings(ctx.settings))
    said = f"converted; {len(stopped)} enrollment(s) stopped"
    return _lead(request, ctx, lead_id, record(ctx, visitor, "convert", f"lead {lead_id}", said))
