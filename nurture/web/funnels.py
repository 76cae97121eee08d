"""Funnel assignments: each funnel's sequences in the order matching tries them, the one a
typical lead gets, the coverage gaps `validate` warns about; reorder, assign, unassign."""

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Form, Request, Response

from nurture.errors import NurtureError, SpecError
from nurture.insights.overview import coverage_gaps, funnel_map
from nurture.project import priorities, stored
from nurture.web.pages import (
    Ctx,
    Editor,
    Nav,
    Viewer,
    Visitor,
    WebContext,
    page_router,
    record,
    render,
)
from nurture.web.sequences import all_rows, applied, editable

router = page_router()
NAV = Nav("Funnels", "/funnels", 20)
Names = Annotated[list[str], Form(max_length=200)]


@router.get("/funnels")
def funnels_page(request: Request, ctx: Ctx, visitor: Viewer) -> Response:
    return _page(request, ctx)


def _page(request: Request, ctx: WebContext, message: str | None = None) -> Response:
    funnels, sequences = ctx.snapshots.get("funnels", lambda: _map(ctx)), all_rows(ctx)
    gaps, invalid = ctx.snapshots.get("gaps", lambda: _gaps(ctx))
    template = "_funnels.html" if request.headers.get("HX-Request") else "funnels.html"
    return render(
        request,
        template,
        funnels=funnels,
        sequences=sequences,
        gaps=gaps,
        invalid=invalid,
        flash=message,
    )


def _map(ctx: WebContext) -> list[dict[str, Any]]:
    with ctx.store.session() as session:
        return funnel_map(session)


def _gaps(ctx: WebContext) -> tuple[dict[str, list[str]], str | None]:
    """The coverage warnings of the project's files; where a file is invalid, why there are none."""
    try:
        return coverage_gaps(ctx.project.files(), ctx.settings.lint_ignore), None
    except SpecError as error:
        return {}, f"`nurture validate` finds errors, so coverage is not checked: {error}"


@router.post("/funnels/{slug}/order")
def reorder(request: Request, ctx: Ctx, visitor: Editor, slug: str, item: Names) -> Response:
    """The funnel's sequences, best first: their priorities are raised to keep that order."""
    with ctx.store.session(immediate=True) as session:
        for ref in item:
            editable(ctx, stored.resolve(session, ref))
        plan = priorities.reorder(session, ctx.project, item, datetime.now(UTC))
    return _page(request, ctx, record(ctx, visitor, "reorder", slug, applied(plan)))


@router.post("/funnels/assign")
def assign(
    request: Request,
    ctx: Ctx,
    visitor: Editor,
    sequence: Names,
    funnel: Names = [],  # noqa: B006 - FastAPI copies the default
    new_funnel: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Offer every sequence chosen to every funnel chosen (a new name creates the funnel)."""
    names = [*funnel, *([new_funnel.strip()] if new_funnel.strip() else [])]
    return _change(request, ctx, visitor, sequence, names, add=True)


@router.post("/funnels/unassign")
def unassign(
    request: Request, ctx: Ctx, visitor: Editor, sequence: Names, funnel: Names
) -> Response:
    return _change(request, ctx, visitor, sequence, funnel, add=False)


def _change(
    request: Request,
    ctx: WebContext,
    visitor: Visitor,
    refs: list[str],
    names: list[str],
    *,
    add: bool,
) -> Response:
    if not refs or not names:
        raise NurtureError("choose at least one sequence and one funnel")
    with ctx.store.session(immediate=True) as session:
        rows = list({row.slug: row for row in (stored.resolve(session, r) for r in refs)}.values())
        for row in rows:
            editable(ctx, row)
        plan = stored.change_funnels(session, ctx.project, rows, names, datetime.now(UTC), add=add)
    action, subject = "assign" if add else "unassign", ", ".join(names)
    return _page(request, ctx, record(ctx, visitor, action, subject, applied(plan)))
