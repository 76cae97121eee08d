"""The base of every sequence-file model: snake_case keys, the seed's camelCase as aliases, no extras."""

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel


class SpecModel(BaseModel):
    """Canonical keys are snake_case; `leadScore`-style aliases load too; unknown keys are errors."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=False,
    )

    def field_value(self, name: str) -> Any:
        """The field `name`, or None where this model has no such field: `getattr(model, name,
        None)` without pydantic's slow path for a missing attribute (3 µs, where a field costs
        under 0.1; the engine asks it of every step it runs)."""
        return self.__dict__.get(name)


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


NonEmpty = Annotated[str, Field(min_length=1)]
OneOrMany = Annotated[
    list[NonEmpty],
    BeforeValidator(
        _one_or_many,
        json_schema_input_type=NonEmpty | Annotated[list[NonEmpty], Field(min_length=1)],
    ),
    Field(min_length=1, description="One value or a list of values (any of them matches)."),
]
"""A string or a list of strings; a list means any of."""


def located_error(loc: tuple[str | int, ...], message: str) -> Exception:
    """An error whose place is `loc` below the model that raises it (diagnostics point there)."""
    from pydantic_core import PydanticCustomError

    return PydanticCustomError("located", message, {"loc": loc})
