"""The JSON Schema of a sequence file, for editors (yaml-language-server) and `nurture schema`."""

import json
from datetime import time, timedelta
from typing import Any

from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from nurture.spec.durations import PATTERN as DURATION_PATTERN
from nurture.spec.durations import format_duration
from nurture.spec.models import SequenceSpec

SCHEMA_ID = "urn:nurture:sequence-file"
TITLE = "nurture sequence file"
DESCRIPTION = (
    "One lead-nurturing sequence. Canonical keys are snake_case; the seed system's camelCase "
    "names (triggerConditions, actionType, delayDays...) are accepted as aliases."
)


class SequenceFileSchema(GenerateJsonSchema):
    """Pydantic's generator, with aliases, durations and lists as users write them (clock times:
    nurture.spec.window.ClockTime)."""

    def model_fields_schema(self, schema: core_schema.ModelFieldsSchema) -> JsonSchemaValue:
        json_schema = super().model_fields_schema(schema)
        aliases = _aliases(schema, json_schema["properties"])
        for name, alias in aliases.items():
            properties = json_schema["properties"]
            if schema["fields"][name].get("serialization_exclude"):  # input only: `delay`
                properties[alias] = properties.pop(name)
            else:
                properties[alias] = _alias_of(name, properties[name])
        _require_name_or_alias(json_schema, aliases)
        return json_schema

    def timedelta_schema(self, schema: core_schema.TimedeltaSchema) -> JsonSchemaValue:
        return {
            "anyOf": [
                {"type": "string", "pattern": DURATION_PATTERN},
                {"type": "number", "minimum": 0, "description": "Minutes."},
            ],
            "examples": ["30m", "2h", "1d 4h", "1w"],
        }

    def encode_default(self, dft: Any) -> Any:
        if isinstance(dft, timedelta):
            return format_duration(dft)
        if isinstance(dft, time):
            return dft.isoformat(timespec="minutes" if not dft.second else "seconds")
        return super().encode_default(dft)


def _aliases(schema: core_schema.ModelFieldsSchema, properties: dict[str, Any]) -> dict[str, str]:
    """Field name -> the alias it also loads by, for the fields that have a distinct one."""
    found = {name: field.get("validation_alias") for name, field in schema["fields"].items()}
    return {
        name: alias
        for name, alias in found.items()
        if isinstance(alias, str) and alias != name and name in properties
    }


def _alias_of(name: str, field_schema: JsonSchemaValue) -> JsonSchemaValue:
    kept = {
        key: value for key, value in field_schema.items() if key not in ("title", "description")
    }
    return {**kept, "description": f"alias of {name}"}


def _require_name_or_alias(json_schema: JsonSchemaValue, aliases: dict[str, str]) -> None:
    """A required field may be given by its name or its alias."""
    required = json_schema.get("required", [])
    either = [name for name in required if name in aliases]
    if not either:
        return
    json_schema["required"] = [name for name in required if name not in aliases]
    if not json_schema["required"]:
        del json_schema["required"]
    json_schema["allOf"] = [
        {
            "anyOf": [
                {"required": [name]},
                {"required": [aliases[name]]},
                *_instead(json_schema, name),
            ]
        }
        for name in either
    ]


def _instead(json_schema: JsonSchemaValue, name: str) -> list[JsonSchemaValue]:
    """A step with variants gives its configs there (nurture.spec.variants)."""
    if name == "action_config" and "variants" in json_schema["properties"]:
        return [{"required": ["variants"]}]
    return []


def sequence_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a sequence file; camelCase aliases load too."""
    generated = SequenceSpec.model_json_schema(by_alias=False, schema_generator=SequenceFileSchema)
    header = {
        "$schema": SequenceFileSchema.schema_dialect,
        "$id": SCHEMA_ID,
        "title": TITLE,
        "description": DESCRIPTION,
    }
    return header | {key: value for key, value in generated.items() if key not in header}


def sequence_json_schema_text() -> str:
    """The schema as `nurture schema` prints it and schema/sequence.schema.json holds it."""
    return json.dumps(sequence_json_schema(), indent=2, ensure_ascii=False) + "\n"
