"""Trigger conditions (which leads a sequence takes) and step conditions (whether a step runs)."""

from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from nurture.spec.base import OneOrMany, SpecModel

FieldValue = str | int | float | bool


AppointmentStatus = Literal["booked", "attended", "no_show", "cancelled", "offered", "none"]


class ScoreRange(SpecModel):
    """A lead score range, both ends included."""

    min: int = Field(0, ge=0, le=100)
    max: int = Field(100, ge=0, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class TriggerConditions(SpecModel):
    """Every condition given must hold; a list means any of its values. Matching ignores case."""

    lead_score: ScoreRange | None = None
    lead_source: OneOrMany | None = None
    lead_status: OneOrMany | None = None
    lead_temperature: OneOrMany | None = None
    appointment: (
        Annotated[list[AppointmentStatus], Field(min_length=1)] | AppointmentStatus | None
    ) = Field(
        None,
        description="A trigger: the lead's appointment just ended so (attended, no_show, "
        "cancelled). A step: the enrollment's appointment is (any of) booked, attended, "
        "no_show, cancelled, offered or none.",
    )

    def count(self) -> int:
        """How many conditions are set: the more, the more specific the sequence."""
        return sum(value is not None for value in self.__dict__.values())


class StepConditions(TriggerConditions):
    """The trigger vocabulary plus tags and custom fields, checked when the step is due."""

    tags: OneOrMany | None = Field(None, description="The lead has all of these tags.")
    not_tags: OneOrMany | None = Field(None, description="The lead has none of these tags.")
    fields: dict[str, FieldValue | list[FieldValue]] | None = Field(
        None, description="Custom field equals the value (or any value of a list)."
    )
