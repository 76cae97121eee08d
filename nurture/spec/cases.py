"""The `tests:` block: dry-run cases with a lead, events and what must happen (run by `nurture test`)."""

from typing import Literal, Self

from pydantic import Field, model_validator

from nurture.spec.base import SpecModel
from nurture.spec.conditions import FieldValue
from nurture.spec.events import EventText
from nurture.spec.times import UsableTime
from nurture.spec.window import TimeZoneName

EnrollmentStatus = Literal["active", "completed", "converted", "stopped", "failed"]


class CaseLead(SpecModel):
    """A lead as a test case gives it."""

    name: str = "Test Lead"
    email: str | None = None
    phone: str | None = None
    source: str | None = None
    status: str | None = None
    temperature: str | None = None
    score: int = Field(0, ge=0, le=100)
    tags: list[str] = Field(default_factory=list)
    timezone: TimeZoneName | None = None
    fields: dict[str, FieldValue] = Field(default_factory=dict)


class StepTime(SpecModel):
    """When a step must run: exactly `at`, or between `after` and `before` (ISO datetimes)."""

    at: UsableTime | None = None
    after: UsableTime | None = None
    before: UsableTime | None = None

    @model_validator(mode="after")
    def _shape(self) -> Self:
        if self.at is None and self.after is None and self.before is None:
            raise ValueError("give 'at', or 'after' and/or 'before'")
        if self.at is not None and (self.after or self.before):
            raise ValueError("give either 'at' or a window ('after'/'before'), not both")
        return self


class Expectation(SpecModel):
    chosen: bool | None = Field(
        None, description="This sequence is (true) or is not (false) the one chosen."
    )
    steps: list[str] | None = Field(None, description="Step ids executed, in order.")
    skipped: list[str] | None = None
    times: dict[str, StepTime] = Field(default_factory=dict)
    contains: dict[str, str | list[str]] = Field(default_factory=dict)
    status: EnrollmentStatus | None = None
    score: int | None = Field(None, ge=0, le=100)
    tags: list[str] | None = None

    def step_ids(self) -> list[tuple[str, str]]:
        """(key, step id) for every step this expectation names, to check they exist."""
        named = [("steps", s) for s in self.steps or []] + [
            ("skipped", s) for s in self.skipped or []
        ]
        return named + [("times", s) for s in self.times] + [("contains", s) for s in self.contains]


class TestCase(SpecModel):
    __test__ = False  # not a pytest class

    name: str = Field(min_length=1)
    lead: CaseLead = Field(default_factory=CaseLead)
    funnel: str | None = None
    start: UsableTime | None = None
    events: list[EventText] = Field(default_factory=list)
    variants: dict[str, str] = Field(
        default_factory=dict, description="The variant the lead gets, by step id (step: variant)."
    )
    expect: Expectation = Field(default_factory=Expectation)
