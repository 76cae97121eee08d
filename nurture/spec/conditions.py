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


class EngagementRange(SpecModel):
    """An engagement score range, both ends included (the score has no upper bound)."""

    min: float = Field(0, ge=0)
    max: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


StepIds = OneOrMany
"""Step ids of the same sequence (any of them)."""
ENGAGEMENT_CONDITIONS = (
    "clicked",
    "not_clicked",
    "opened",
    "not_opened",
    "delivered",
    "not_delivered",
    "read",
    "not_read",
    "replied",
    "engagement_score",
)
"""Conditions on what the lead did with its messages (nurture.rules.engagement); left out of a
definition when unset, so that sequences applied before them keep their fingerprints."""


class StepConditions(TriggerConditions):
    """The trigger vocabulary plus tags, custom fields and engagement, checked when the step is due."""

    tags: OneOrMany | None = Field(None, description="The lead has all of these tags.")
    not_tags: OneOrMany | None = Field(None, description="The lead has none of these tags.")
    fields: dict[str, FieldValue | list[FieldValue]] | None = Field(
        None, description="Custom field equals the value (or any value of a list)."
    )
    clicked: StepIds | None = Field(
        None, description="The lead clicked a tracked link of one of these steps' messages."
    )
    not_clicked: StepIds | None = Field(None, description="No click in any of these steps.")
    opened: StepIds | None = Field(None, description="The lead opened one of these emails.")
    not_opened: StepIds | None = Field(None, description="None of these emails was opened.")
    delivered: StepIds | None = Field(
        None, description="The provider delivered one of these steps' messages."
    )
    not_delivered: StepIds | None = Field(None, description="None of these was delivered.")
    read: StepIds | None = Field(None, description="The lead read one of these messages.")
    not_read: StepIds | None = Field(None, description="None of these messages was read.")
    replied: bool | None = Field(
        None, description="The lead wrote in (true) or not (false) since the enrollment began."
    )
    engagement_score: EngagementRange | None = Field(
        None, description="The lead's engagement score (recency and frequency of its events)."
    )

    def engagement(self) -> dict[str, object]:
        """The engagement conditions set, by name."""
        return {
            name: value
            for name in ENGAGEMENT_CONDITIONS
            if (value := getattr(self, name)) is not None
        }

    def named_steps(self) -> list[tuple[str, str]]:
        """(condition, step id) of every step these conditions name, to check they exist."""
        return [(name, i) for name in STEP_ID_CONDITIONS for i in getattr(self, name) or []]


STEP_ID_CONDITIONS = ENGAGEMENT_CONDITIONS[:8]
