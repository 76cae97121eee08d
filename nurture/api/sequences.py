"""The original system's sequence endpoints, same paths and camelCase JSON.

`{id}` is the numeric id, the name or the slug. Writes answer 409 unless
`api.sequences = "read-write"`; then they go through the same code as the CLI.
`/{id}/stats` and `/{id}/test` are in nurture/api/insights.py.
"""

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self, TypedDict

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Response
from fastapi.types import IncEx
from pydantic import Field, ModelWrapValidatorHandler, PrivateAttr, model_validator
from pydantic.alias_generators import to_snake
from sqlmodel import Session

from nurture.api.auth import allows
from nurture.api.deps import Context, Ctx
from nurture.api.errors import ERRORS
from nurture.project import sequences as catalog
from nurture.project import stored
from nurture.spec.base import SpecModel
from nurture.spec.categories import Category
from nurture.spec.models import SequenceSpec
from nurture.store.tables import Sequence

router = APIRouter(prefix="/api/nurturing-sequences", tags=["sequences"], responses=ERRORS)
Ref = Annotated[
    str,
    Path(
        description="The sequence's numeric id, name or slug.",
        openapi_examples={"by id": {"value": "1"}, "by name": {"value": "warm-lead-welcome"}},
    ),
]
READ_ONLY_FIELDS = {"id", "version", "managed_by", "path", "created_at", "updated_at"}
READ_ONLY = (
    'sequences are read-only over HTTP (api.sequences = "read-only"): change the YAML file '
    'and run `nurture apply` (or set api.sequences = "read-write")'
)


async def read_write(ctx: Ctx) -> None:
    """409 while sequences are read-only over HTTP; a dependency, so before the body is checked."""
    if ctx.settings.api.sequences != "read-write":
        raise HTTPException(409, READ_ONLY)


READ, WRITE = allows("read"), [*allows("write"), Depends(read_write)]


class SequenceOut(SequenceSpec):
    """A sequence as stored: its definition plus identity and bookkeeping."""

    id: int
    version: int
    managed_by: Literal["file", "api"] = Field(
        description="file: a YAML file owns it; api: the store alone (drift until exported)."
    )
    path: str | None
    created_at: datetime
    updated_at: datetime


class SequenceIn(SequenceSpec):
    """A sequence (snake_case or camelCase keys); a GET answer's read-only fields are ignored."""

    id: int | None = None
    version: int | None = None
    managed_by: str | None = None
    path: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    _sent: dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_sent(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        """Keep the body as sent: later problems (templates) name fields in its spelling."""
        body = handler(data)
        body._sent = data if isinstance(data, dict) else {}
        return body

    def definition(self) -> dict[str, Any]:
        """The sequence as sent, without a GET answer's read-only fields."""
        return {k: v for k, v in self._sent.items() if to_snake(k) not in READ_ONLY_FIELDS}


class NewName(SpecModel):
    name: str | None = Field(
        None, min_length=1, max_length=200, description="Default: 'Copy of X'."
    )


class Toggle(SpecModel):
    active: bool | None = Field(None, description="Set this state; without it, flip.")


class Assignment(SpecModel):
    sequence_id: int | str = Field(description="Sequence id, name or slug.", examples=[1])
    funnel_id: int | str = Field(
        description="Funnel id or name (a new name creates the funnel).", examples=["website"]
    )


class BulkAssignment(SpecModel):
    sequence_ids: list[int | str] = Field(min_length=1, max_length=500, examples=[[1]])
    funnel_ids: list[int | str] = Field(min_length=1, max_length=500, examples=[["website"]])


class FunnelAssignmentOut(SpecModel):
    funnel_id: int
    funnel: str
    slug: str
    assigned_at: datetime


def sequence_out(session: Session, row: Sequence) -> SequenceOut:
    spec = stored.current_spec(session, row)
    return SequenceOut(
        **spec.model_dump(exclude={"tests"}),
        id=row.id,
        version=row.current_version,
        managed_by="file" if row.source_path else "api",
        path=row.source_path,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _spec(ctx: Context, body: SequenceIn) -> SequenceSpec:
    return stored.parse_spec(body.definition(), ctx.project.coach_keys)


class _Out(TypedDict):
    """The response options the sequence routes share (a TypedDict, so each key is checked)."""

    response_model: Any  # what FastAPI itself accepts: a model, list[...] of one, ...
    response_model_exclude: IncEx


OUT: _Out = {"response_model": SequenceOut, "response_model_exclude": {"tests"}}
MANY: _Out = {"response_model": list[SequenceOut], "response_model_exclude": {"__all__": {"tests"}}}


@router.get("", dependencies=READ, **MANY)
def list_sequences(
    ctx: Ctx, category: Category | None = None, active: Annotated[bool | None, Query()] = None
) -> list[SequenceOut]:
    """Every live sequence, by name."""
    with ctx.store.session() as session:
        rows = [r for r in stored.live_rows(session) if _wanted(r, category, active)]
        return [sequence_out(session, row) for row in rows]


def _wanted(row: Sequence, category: Category | None, active: bool | None) -> bool:
    return (category is None or row.category == category) and (
        active is None or row.active == active
    )


@router.get("/category/{category}", dependencies=READ, **MANY)
def by_category(ctx: Ctx, category: Category) -> list[SequenceOut]:
    """The live sequences of one category."""
    return list_sequences(ctx, category, None)


@router.post("", status_code=201, dependencies=WRITE, **OUT)
def create(ctx: Ctx, body: SequenceIn) -> SequenceOut:
    """Create a sequence in the store alone: `nurture plan` shows it as drift until exported."""
    spec = _spec(ctx, body)
    with ctx.store.session(immediate=True) as session:
        stored.create(session, ctx.project, spec, datetime.now(UTC))
        return sequence_out(session, stored.resolve(session, spec.slug))


@router.get("/{id}", dependencies=READ, **OUT)
def get(ctx: Ctx, id: Ref) -> SequenceOut:
    with ctx.store.session() as session:
        return sequence_out(session, stored.resolve(session, id))


@router.put("/{id}", dependencies=WRITE, **OUT)
def replace(ctx: Ctx, id: Ref, body: SequenceIn) -> SequenceOut:
    """Replace the definition (its YAML file too, when it has one); a new version if it differs."""
    spec = _spec(ctx, body)
    with ctx.store.session(immediate=True) as session:
        row = stored.resolve(session, id)
        stored.replace(session, ctx.project, row, spec, datetime.now(UTC))
        return sequence_out(session, stored.resolve(session, row.slug))


@router.delete("/{id}", status_code=204, dependencies=WRITE, response_class=Response)
def delete(ctx: Ctx, id: Ref) -> Response:
    """Delete (its file too, when it has one); the versions stay for history."""
    with ctx.store.session(immediate=True) as session:
        stored.delete(session, ctx.project, stored.resolve(session, id), datetime.now(UTC))
    return Response(status_code=204)


@router.post("/{id}/duplicate", status_code=201, dependencies=WRITE, **OUT)
def duplicate(ctx: Ctx, id: Ref, body: Annotated[NewName | None, Body()] = None) -> SequenceOut:
    """An inactive copy, named `body.name` or 'Copy of NAME'."""
    with ctx.store.session(immediate=True) as session:
        row = stored.resolve(session, id)
        name = body.name if body and body.name else f"Copy of {row.name}"
        stored.duplicate(session, ctx.project, row, name, datetime.now(UTC))
        return sequence_out(session, catalog.find(session, name))


@router.put("/{id}/toggle", dependencies=WRITE, **OUT)
def toggle(ctx: Ctx, id: Ref, body: Annotated[Toggle | None, Body()] = None) -> SequenceOut:
    """Flip active/inactive (or set `active`)."""
    with ctx.store.session(immediate=True) as session:
        row = stored.resolve(session, id)
        stored.set_active(
            session, ctx.project, row, body.active if body else None, datetime.now(UTC)
        )
        return sequence_out(session, stored.resolve(session, row.slug))


@router.post("/assign-to-funnel", dependencies=WRITE, **MANY)
def assign_to_funnel(ctx: Ctx, body: Assignment) -> list[SequenceOut]:
    """Offer the sequence to the funnel's leads."""
    return _funnels(ctx, [body.sequence_id], [body.funnel_id], add=True)


@router.post("/remove-from-funnel", dependencies=WRITE, **MANY)
def remove_from_funnel(ctx: Ctx, body: Assignment) -> list[SequenceOut]:
    return _funnels(ctx, [body.sequence_id], [body.funnel_id], add=False)


@router.post("/bulk-assign", dependencies=WRITE, **MANY)
def bulk_assign(ctx: Ctx, body: BulkAssignment) -> list[SequenceOut]:
    """Assign every sequence to every funnel."""
    return _funnels(ctx, body.sequence_ids, body.funnel_ids, add=True)


def _funnels(
    ctx: Context, sequence_refs: list[int | str], funnel_refs: list[int | str], *, add: bool
) -> list[SequenceOut]:
    with ctx.store.session(immediate=True) as session:
        rows = list(
            {
                row.slug: row for row in (stored.resolve(session, str(r)) for r in sequence_refs)
            }.values()
        )
        names = [stored.funnel_name(session, ref) for ref in funnel_refs]
        stored.change_funnels(session, ctx.project, rows, names, datetime.now(UTC), add=add)
        return [sequence_out(session, stored.resolve(session, row.slug)) for row in rows]


@router.get("/{id}/funnel-assignments", dependencies=READ, response_model=list[FunnelAssignmentOut])
def funnel_assignments(ctx: Ctx, id: Ref) -> list[FunnelAssignmentOut]:
    """The funnels that offer this sequence."""
    with ctx.store.session() as session:
        rows = stored.assignments(session, stored.resolve(session, id))
        return [FunnelAssignmentOut.model_validate(row) for row in rows]
