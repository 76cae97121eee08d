"""The sequence builder: start empty or from a template, add, reorder (drag and drop or the
keyboard), edit and switch off steps, set the sequence's settings, see `validate`'s messages
beside each field, preview the dry run for a sample lead, save: the plan, then apply.

The page keeps no state: the draft (its YAML text, its file and what it was when opened) rides
in the page's hidden fields, and every change posts it and gets the builder back with the new
text. Everything it does is nurture.project.builder's and nurture.simulate.preview's.
"""

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Form, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from nurture.errors import NurtureError
from nurture.project import library
from nurture.project.builder import drafts, saving
from nurture.simulate.preview import preview
from nurture.spec import forms
from nurture.spec.actions import ActionType
from nurture.spec.cases import CaseLead
from nurture.web.pages import (
    Ctx,
    Editor,
    Nav,
    Viewer,
    WebContext,
    csrf_exempt,
    page_router,
    record,
    render,
)
from nurture.web.sequences import applied

router = page_router()
NAV = Nav("Builder", "/builder", 15)
Text = Annotated[str, Form(max_length=1_000_000)]
Short = Annotated[str, Form(max_length=200)]
Ref = Annotated[str | None, Query(max_length=200)]


@router.get("/builder")
def builder_page(
    request: Request,
    ctx: Ctx,
    visitor: Viewer,
    sequence: Ref = None,
    template: Ref = None,
    name: Ref = None,
) -> Response:
    """Open a sequence's file, or a new one from a template (or blank); else the choice."""
    if sequence:
        draft = drafts.open_draft(ctx.project, sequence)
    elif name:
        draft = drafts.new_draft(ctx.project, name.strip(), template or None)
    else:
        return render(request, "builder.html", draft=None, templates=library.templates())
    return _builder(request, ctx, draft, full=True)


@router.post("/builder/change")
async def change(request: Request, ctx: Ctx, visitor: Viewer) -> Response:
    """One change to the draft (`op`); the builder comes back with the new text and its checks.

    Async only to read the whole form (a step's fields depend on its action type); the work
    runs in a thread, as every page's does."""
    posted = {key: value for key, value in (await request.form()).multi_items() if key != "item"}
    items = (await request.form()).getlist("item")
    order = [int(str(value)) for value in items if str(value).isdigit()]
    return await run_in_threadpool(_change, request, ctx, posted, order)


def _change(
    request: Request, ctx: WebContext, posted: dict[str, Any], order: list[int]
) -> Response:
    draft = _draft(ctx, *(str(posted.get(key, "")) for key in ("text", "file", "slug", "base")))
    op, action = str(posted.get("op", "")), str(posted.get("action", ""))
    index = int(posted["index"]) if str(posted.get("index", "")).isdigit() else 0
    new = _changed(draft.text, op, index, action, order, posted)
    return _builder(request, ctx, _with(draft, new), opened=index if op == "step" else None)


def _changed(
    text: str, op: str, index: int, action: str, item: list[int], posted: dict[str, Any]
) -> str:
    if op == "add":
        return drafts.add_step(text, ActionType(action))
    if op == "order":
        return _reordered(text, item)
    if op in ("up", "down", "remove", "toggle"):
        move = {"up": drafts.move_up, "down": drafts.move_down}
        return {**move, "remove": drafts.remove_step, "toggle": drafts.toggle_step}[op](text, index)
    if op == "step":
        return drafts.edit_step(text, index, _step_values(text, index, posted))
    if op == "settings":
        return drafts.edit_settings(text, forms.values(forms.settings_fields(), posted))
    raise NurtureError(f"unknown change {op!r}")


def _reordered(text: str, order: list[int]) -> str:
    """The steps in `order` (their indexes before the drag), one move at a time."""
    current = list(range(len(drafts.step_rows(text))))
    if sorted(order) != current:
        raise NurtureError("the new order must name every step once")
    for target, step in enumerate(order):
        source = current.index(step)
        if source != target:
            text = drafts.move_step(text, source, target)
            current.insert(target, current.pop(source))
    return text


def _step_values(text: str, index: int, posted: dict[str, Any]) -> dict[str, Any]:
    action = posted.get("action_type") or drafts.step_form(text, index)["action_type"]
    fields = [*forms.STEP_FIELDS, *forms.condition_fields()]
    if action in {kind.value for kind in ActionType}:
        fields += forms.action_fields(action)
    values = forms.values(fields, posted)
    current = drafts.step_form(text, index)["action_type"]
    return values | ({"action_type": action} if action != current else {})


@router.post("/builder/preview")
def preview_panel(
    request: Request,
    ctx: Ctx,
    visitor: Viewer,
    text: Text,
    file: Short,
    slug: Short = "",
    base: Short = "",
    lead_name: Short = "Test Lead",
    score: Annotated[int, Form(ge=0, le=100)] = 0,
    source: Short = "",
    status: Short = "",
    temperature: Short = "",
    tags: Short = "",
    timezone: Short = "",
    funnel: Short = "",
) -> Response:
    """The dry run of the draft for the lead described, as `nurture test` prints it."""
    draft = _draft(ctx, text, file, slug, base)
    lead = CaseLead(
        name=lead_name or "Test Lead",
        score=score,
        source=source or None,
        status=status or None,
        temperature=temperature or None,
        tags=[tag.strip() for tag in tags.split(",") if tag.strip()],
        timezone=timezone or None,
    )
    start = datetime.now(UTC).replace(second=0, microsecond=0)
    shown = preview(ctx.settings, draft.text, draft.path, lead, start, funnel=funnel or None)
    return render(request, "_builder_preview.html", preview=shown)


@router.post("/builder/plan")
def plan(
    request: Request,
    ctx: Ctx,
    visitor: Editor,
    text: Text,
    file: Short,
    slug: Short = "",
    base: Short = "",
) -> Response:
    """What saving does, as `nurture plan` says it; nothing is written yet."""
    draft = _draft(ctx, text, file, slug, base)
    with ctx.store.session() as session:
        planned = saving.plan_save(session, ctx.settings, draft)
    return render(request, "_builder_plan.html", planned=planned, draft=draft)


@router.post("/builder/apply")
def apply(
    request: Request,
    ctx: Ctx,
    visitor: Editor,
    text: Text,
    file: Short,
    slug: Short = "",
    base: Short = "",
) -> Response:
    """Write the file (or the store) and apply what the plan showed."""
    draft = _draft(ctx, text, file, slug, base)
    with ctx.store.session(immediate=True) as session:
        done = saving.apply_save(session, ctx.settings, draft, datetime.now(UTC))
    said = record(ctx, visitor, "save", draft.path.stem, applied(done))
    saved = drafts.open_draft(ctx.project, draft.path.stem) if draft.path.exists() else draft
    return _builder(request, ctx, saved, flash=said)


@router.post("/builder/download")
@csrf_exempt  # it changes nothing: it gives back the text posted, as a file (a plain form post)
def download(
    request: Request,
    ctx: Ctx,
    visitor: Viewer,
    text: Text,
    file: Short,
    slug: Short = "",
    base: Short = "",
) -> Response:
    """The draft's YAML as a file, to commit by hand where the builder cannot save."""
    name, content = saving.download(_draft(ctx, text, file, slug, base))
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    return Response(content, media_type="application/yaml", headers=headers)


def _draft(ctx: WebContext, text: str, file: str, slug: str, base: str) -> drafts.Draft:
    """The draft the page posted; its file only ever a name in the sequences folder."""
    if "/" in file or "\\" in file or not file.endswith(".yaml") or file.startswith("."):
        raise NurtureError(f"{file!r} is not a sequence file's name")
    path = ctx.project.sequences_dir / file
    return drafts.Draft(text.replace("\r\n", "\n"), path, slug or None, base or None)


def _with(draft: drafts.Draft, text: str) -> drafts.Draft:
    return drafts.Draft(text, draft.path, draft.slug, draft.base)


def _builder(
    request: Request,
    ctx: WebContext,
    draft: drafts.Draft,
    *,
    full: bool = False,
    opened: int | None = None,
    flash: str | None = None,
) -> Response:
    diagnostics = saving.check(ctx.settings, draft)
    problems = drafts.diagnostics_by_field(diagnostics)
    with_problems = {int(key.split(".")[1]) for key in problems if _step_key(key)}
    steps = drafts.step_rows(draft.text)
    values: dict[str, Any] = {
        "draft": draft,
        "steps": steps,
        "step_forms": [
            drafts.step_form(draft.text, row["index"]) for row in drafts.step_rows(draft.text)
        ],
        "settings": drafts.settings_form(draft.text),
        "problems": problems,
        "open_steps": with_problems | ({opened} if opened is not None else set()),
        "diagnostics": diagnostics,
        "mode": saving.mode(ctx.settings),
        "opened": opened,
        "fields": _fields(),
        "variables": forms.template_variables(ctx.project.coach_keys),
        "actions": [action.value for action in ActionType],
    }
    template = "builder.html" if full or not request.headers.get("HX-Request") else "_builder.html"
    return render(request, template, flash=flash, **values)


def _step_key(key: str) -> bool:
    parts = key.split(".")
    return len(parts) > 1 and parts[0] == "steps" and parts[1].isdigit()


def _fields() -> dict[str, Any]:
    return {
        "settings": forms.settings_fields(),
        "step": list(forms.STEP_FIELDS),
        "conditions": forms.condition_fields(),
        "actions": forms.action_forms(),
    }
