"""Enrollments over HTTP: settle the sends whose fate is unclear, as `nurture enrollments settle`."""

from datetime import UTC, datetime
from typing import Annotated, Literal, Self

from fastapi import APIRouter, Depends
from pydantic import AfterValidator, Field, PrivateAttr, model_validator

from nurture.api.auth import Require
from nurture.api.deps import Ctx
from nurture.api.errors import ERRORS
from nurture.api.leads import Answer
from nurture.engine.delivery import settle
from nurture.rules.periods import BadWindow, Window, parse_when
from nurture.spec.base import SpecModel, located_error
from nurture.store.tokens import Caller

router = APIRouter(prefix="/api/enrollments", tags=["enrollments"], responses=ERRORS)
Writer = Annotated[Caller, Depends(Require(("write",)))]


def _no_nul(text: str) -> str:
    if "\x00" in text:
        raise ValueError("a NUL byte is not allowed here")
    return text


Text = Annotated[str, AfterValidator(_no_nul)]
Id = Annotated[int, Field(ge=1, le=2**31 - 1)]
When = Field(
    None, min_length=1, max_length=40, description="A duration back from now (7d, 12h) or a date."
)


class SettleIn(SpecModel):
    """A decision about the `unknown` enrollments the filters select (all of them without one)."""

    decision: Literal["sent", "resend", "stop"] = Field(
        alias="as",
        description="sent: the message went out, move on to the next step (or complete); "
        "resend: send it again now, as a new attempt; stop: end the enrollment.",
    )
    sequence: Text | None = Field(
        None, min_length=1, max_length=200, description="Only this sequence (name or slug)."
    )
    step: Text | None = Field(None, min_length=1, max_length=100, description="Only this step id.")
    since: str | None = When
    until: str | None = When
    enrollments: list[Id] | None = Field(
        None, max_length=10_000, description="Only these enrollment ids."
    )
    dry_run: bool = Field(False, description="Answer the plan only; change nothing.")
    _window: Window = PrivateAttr(default_factory=Window)

    @model_validator(mode="after")
    def _times(self) -> Self:
        """`since` and `until` as times, now; a bad one is a 422 naming it."""
        now, times = datetime.now(UTC), {}
        for name in ("since", "until"):
            try:
                times[name] = parse_when(getattr(self, name), now, name)
            except BadWindow as error:
                raise located_error((name,), str(error)) from None
        try:
            self._window = Window(**times)
        except BadWindow as error:  # since after until
            raise located_error(("until",), str(error)) from None
        return self

    def filters(self) -> settle.Filters:
        ids = tuple(self.enrollments or ())
        return settle.Filters(self.sequence, self.step, self._window, ids)


class Group(Answer):
    sequence: str
    step: str | None
    count: int
    oldest: datetime | None
    newest: datetime | None


class Outcome(Answer):
    settled: int = Field(description="How many enrollments were settled.")
    gone: int = Field(description="Selected, but no longer unknown by then: left alone.")
    statuses: dict[str, int] = Field(description="Where the settled enrollments stand now.")


class SettleOut(Answer):
    """The plan (what the decision does, to how many, per sequence and step) and what was done."""

    decision: str = Field(alias="as")
    effect: str
    count: int = Field(description="How many sends of unclear fate the filters select.")
    oldest: datetime | None = Field(description="When the oldest of them started.")
    newest: datetime | None
    groups: list[Group]
    settled: Outcome | None = Field(description="What was settled; null for a dry run.")


@router.post("/settle", response_model=SettleOut)
def settle_sends(ctx: Ctx, caller: Writer, body: SettleIn) -> SettleOut:
    """Settle the sends whose fate is unclear (`unknown` enrollments) as sent, resend or stop.

    One transaction; an enrollment that stopped being `unknown` meanwhile is left alone.
    """
    now = datetime.now(UTC)
    with ctx.store.session(immediate=not body.dry_run) as session:
        planned = settle.plan(session, body.decision, body.filters())
        outcome = None
        if not body.dry_run and planned.sends:
            zone = ctx.settings.timezone
            outcome = settle.settle(session, planned, now, f"token {caller.name} (api)", zone)
    done = Outcome.model_validate(outcome.to_dict()) if outcome else None
    return SettleOut.model_validate(planned.to_dict() | {"settled": done})
