"""All sequences: figures, filter by category, search; toggle, duplicate, delete (editors).

Changes go through nurture.project.stored, as `nurture sequences ...` and the API's do: a
sequence with a file in the project is changed in its file (comments kept) and applied; one in
the store alone only where `[api] sequences = "read-write"`.
"""

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Form, Query, Request, Response

from nurture.insights.overview import filtered, sequence_rows
from nurture.project import stored
from nurture.project.applied import in_flight
from nurture.project.plan import Plan
from nurture.spec.categories import CATEGORIES
from nurture.store.tables import Sequence
from nurture.web.pages import (
    Ctx,
    Editor,
    Nav,
    PageError,
    Viewer,
    WebContext,
    page_router,
    record,
    render,
)

router = page_router()
NAV = Nav("Sequences", "/sequences", 10)
STORE_READ_ONLY = (
    "{name} lives in the store alone and sequences are read-only here "
    '(api.sequences = "read-only"): export it to a file (`nurture sequences export`) or set '
    'api.sequences = "read-write"'
)
Search = Annotated[str | None, Query(max_length=200)]


@router.get("/sequences")
def sequences_page(
    request: Request, ctx: Ctx, visitor: Viewer, category: Search = None, q: Search = None
) -> Response:
    category = category or None
    rows = filtered(all_rows(ctx), category, q)
    template = "_sequence_rows.html" if request.headers.get("HX-Target") == "rows" else None
    return render(
        request,
        template or "sequences.html",
        rows=rows,
        categories=CATEGORIES,
        category=category or "",
        q=q or "",
        can_edit_store=_store_writable(ctx),
    )


def all_rows(ctx: WebContext) -> list[dict[str, Any]]:
    """Every sequence with its figures (a snapshot: see nurture.web.snapshots)."""

    def compute() -> list[dict[str, Any]]:
        with ctx.store.session() as session:
            return sequence_rows(session)

    return ctx.snapshots.get("sequences", compute)


def _store_writable(ctx: WebContext) -> bool:
    return ctx.settings.api.sequences == "read-write"


def editable(ctx: WebContext, row: Sequence) -> None:
    """A file's sequence changes through its file; one in the store alone only in read-write."""
    if stored.file_of(ctx.project, row.slug) is None and not _store_writable(ctx):
        raise PageError(409, STORE_READ_ONLY.format(name=row.name))


def _one_row(request: Request, ctx: WebContext, slug: str, message: str) -> Response:
    rows = [row for row in all_rows(ctx) if row["slug"] == slug]
    return render(
        request,
        "_sequence_row.html",
        row=rows[0],
        flash=message,
        can_edit_store=_store_writable(ctx),
    )


@router.post("/sequences/{slug}/toggle")
def toggle(request: Request, ctx: Ctx, visitor: Editor, slug: str) -> Response:
    """Flip active/inactive, like `nurture sequences toggle`."""
    with ctx.store.session(immediate=True) as session:
        row = stored.resolve(session, slug)
        editable(ctx, row)
        slug = row.slug
        plan = stored.set_active(session, ctx.project, row, None, datetime.now(UTC))
    return _one_row(request, ctx, slug, record(ctx, visitor, "toggle", slug, applied(plan)))


@router.post("/sequences/{slug}/duplicate")
def duplicate(
    request: Request,
    ctx: Ctx,
    visitor: Editor,
    slug: str,
    name: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """An inactive copy, named as given or 'Copy of NAME'."""
    with ctx.store.session(immediate=True) as session:
        row = stored.resolve(session, slug)
        editable(ctx, row)
        new_name = name.strip() or f"Copy of {row.name}"
        plan = stored.duplicate(session, ctx.project, row, new_name, datetime.now(UTC))
    return _table(request, ctx, record(ctx, visitor, "duplicate", slug, applied(plan)))


@router.get("/sequences/{slug}/delete")
def confirm_delete(request: Request, ctx: Ctx, visitor: Editor, slug: str) -> Response:
    """What deleting does, as `nurture plan` says it: the file removed, the leads in flight."""
    with ctx.store.session() as session:
        row = stored.resolve(session, slug)
        editable(ctx, row)
        running = in_flight(session, [row.id]).get(row.id, 0)
        shown = {"name": row.name, "slug": row.slug, "source_path": row.source_path}
    return render(request, "_delete.html", row=shown, in_flight=running)


@router.post("/sequences/{slug}/delete")
def delete(request: Request, ctx: Ctx, visitor: Editor, slug: str) -> Response:
    with ctx.store.session(immediate=True) as session:
        row = stored.resolve(session, slug)
        editable(ctx, row)
        running = in_flight(session, [row.id]).get(row.id, 0)
        plan = stored.delete(session, ctx.project, row, datetime.now(UTC))
    stopped = f", stopped {running} in-flight enrollment(s)" if running else ""
    return _table(request, ctx, record(ctx, visitor, "delete", slug, applied(plan) + stopped))


def _table(request: Request, ctx: WebContext, message: str) -> Response:
    rows = all_rows(ctx)
    return render(
        request,
        "_sequence_rows.html",
        rows=rows,
        flash=message,
        can_edit_store=_store_writable(ctx),
    )


def applied(plan: Plan) -> str:
    """What was applied, in `nurture apply`'s words."""
    parts = [
        _change_text(change.to_dict()) for change in plan.changes if change.action != "unchanged"
    ]
    return "applied: " + "; ".join(parts) if parts else "nothing changed"


def _change_text(change: dict[str, Any]) -> str:
    where = f" ({change['path']})" if change["path"] else ""
    text = f"{change['action']} {change['name']}{where}"
    if change["in_flight"] and change["action"] in ("update", "delete"):
        verb = "stopped" if change["action"] == "delete" else "affects"
        text += f", {verb} {change['in_flight']} in-flight enrollment(s)"
    return text
