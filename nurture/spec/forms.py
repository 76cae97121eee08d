"""The builder's forms, read from the models: a field per setting, per step, per action config.

A form's field names are dotted paths (`send_window.start`, `template.content_sid`); `values`
turns what a browser posts back into the nested data `nurture.spec.edit.update` writes. What a
field cannot parse stays as typed, so validation says what is wrong in `validate`'s words.
"""

import types
from collections.abc import Collection, Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import time, timedelta
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from nurture.spec.actions import ACTION_CONFIGS, TEMPLATE_FIELDS, ActionType
from nurture.spec.models import SequenceSpec
from nurture.spec.templates import COACH_KEYS, LEAD_KEYS

Kind = Literal[
    "text", "template", "number", "checkbox", "choice", "duration", "time", "list", "mapping"
]
MULTILINE = frozenset({"body", "html", "message", "description", "notes"})
LABELS = {
    "content_sid": "Approved template (Twilio content SID)",
    "variables": "Template variables (one per line: 1={{ lead.first_name }})",
    "due_in": "Due in",
    "reply_to": "Reply-to address",
    "html": "HTML body",
    "at": "At (the lead's local time)",
    "after": "After",
    "duration_minutes": "Length (minutes)",
    "set": "Set the score to",
    "add": "Add to the score (negative subtracts)",
    "lead_score.min": "Score at least",
    "lead_score.max": "Score at most",
    "not_tags": "Has none of these tags",
    "tags": "Tags",
    "fields": "Custom fields (one per line: goal=strength)",
    "holidays": "Holidays of (country code, e.g. US, GB-ENG)",
    "timezone": "Time zone (for leads without one)",
    "delay": "Delay after the previous step (e.g. 2d, 3h, 1d 4h)",
}


@dataclass(frozen=True)
class FormField:
    """One field of a form: what it holds and how a page asks for it."""

    name: str
    label: str
    kind: Kind
    required: bool = False
    default: Any = None
    help: str = ""
    choices: tuple[str, ...] = ()
    multiline: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"choices": list(self.choices)}


SETTINGS_SKIPPED = frozenset({"steps", "tests"})
STEP_FIELDS = (
    FormField("name", "Name", "text", required=True),
    FormField("id", "Id (keeps leads in flight in place when the name changes)", "text"),
    FormField("description", "Description", "text"),
    FormField("delay", LABELS["delay"], "duration"),
    FormField("active", "Active", "checkbox", default=True),
    FormField("stop", "End the sequence after this step", "checkbox", default=False),
)
"""What every step has besides its action (conditions: `condition_fields`)."""


def settings_fields() -> list[FormField]:
    """The sequence's settings: identity, triggers, retries, stop rules, re-entry, send window."""
    return [f for f in _fields(SequenceSpec) if f.name.split(".")[0] not in SETTINGS_SKIPPED]


def condition_fields() -> list[FormField]:
    """A step's conditions, under `conditions.`."""
    from nurture.spec.conditions import StepConditions

    return list(_fields(StepConditions, "conditions."))


def action_fields(action: ActionType | str) -> list[FormField]:
    """The config fields of one action type, under `action_config.`."""
    return list(_fields(ACTION_CONFIGS[ActionType(action)], "action_config.", templates=True))


def action_forms() -> dict[str, list[FormField]]:
    """Every action type's config fields."""
    return {action.value: action_fields(action) for action in ActionType}


def template_variables(coach_keys: Collection[str] | None = None) -> list[str]:
    """The variables a message may use, as a coach types them."""
    lead = [f"lead.{key}" for key in _LEAD_ORDER if key in LEAD_KEYS] + ["lead.fields.NAME"]
    coach = [f"coach.{key}" for key in sorted(coach_keys or COACH_KEYS)]
    names = [*lead, *coach, "funnel.name", "sequence.name", "step.name", "unsubscribe_url"]
    return ["{{ " + name + " }}" for name in names]


_LEAD_ORDER: tuple[str, ...] = ("first_name", "name", "last_name", "email", "phone", "source")
_LEAD_ORDER += ("status", "temperature", "score", "tags", "timezone", "funnel", "created_at")


EITHER = ("true", "false")
"""The choices of a flag that may also be left unset (a condition such as `replied`)."""


def _fields(
    model: type[BaseModel], prefix: str = "", *, templates: bool = False
) -> Iterator[FormField]:
    """`templates`: the model is an action's config, whose TEMPLATE_FIELDS are templates."""
    for name, info in model.model_fields.items():
        if info.exclude:
            continue
        annotation = _bare(info.annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _fields(annotation, f"{prefix}{name}.", templates=templates)
            continue
        kind, choices = (
            ("template", ()) if templates and name in TEMPLATE_FIELDS else _kind(annotation)
        )
        if kind == "checkbox" and info.default is None:  # `replied: true|false`, or unasked
            kind, choices = "choice", EITHER
        yield _field(prefix + name, name, kind, choices, info)


def _field(
    path: str, name: str, kind: Kind, choices: tuple[str, ...], info: FieldInfo
) -> FormField:
    default = None if info.is_required() else info.get_default(call_default_factory=True)
    label = LABELS.get(
        path.split(".", 1)[-1], LABELS.get(name, name.replace("_", " ").capitalize())
    )
    multiline = kind == "template" and name in MULTILINE
    return FormField(
        path,
        label,
        kind,
        info.is_required(),
        _plain(default),
        info.description or "",
        choices,
        multiline,
    )


def _kind(annotation: Any) -> tuple[Kind, tuple[str, ...]]:
    origin = get_origin(annotation)
    if origin is Literal:
        return "choice", tuple(str(arg) for arg in get_args(annotation))
    if annotation is bool:
        return "checkbox", ()
    if annotation in (int, float):
        return "number", ()
    if annotation is timedelta:
        return "duration", ()
    if annotation is time:
        return "time", ()
    if origin is list:
        return "list", ()
    if origin is dict:
        return "mapping", ()
    return "text", ()


def _bare(annotation: Any) -> Any:
    """The type a field holds: `Duration | None` is timedelta, `OneOrMany` list[str]."""
    if get_origin(annotation) is Annotated:
        return _bare(get_args(annotation)[0])
    if get_origin(annotation) in (Union, types.UnionType):
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        return _bare(members[0]) if len(members) == 1 else annotation
    return annotation


def _plain(value: Any) -> Any:
    """A default as a form shows it."""
    if isinstance(value, timedelta):
        from nurture.spec.durations import format_duration

        return format_duration(value)
    if isinstance(value, time):
        return f"{value:%H:%M}"
    return value


def values(fields: list[FormField], form: Mapping[str, Any]) -> dict[str, Any]:
    """What a browser posted (text by dotted name) as nested data: numbers, flags, lists,
    mappings; an empty field is None (the key is removed); a field not posted is left out,
    except a checkbox, which a browser does not post when it is off."""
    data: dict[str, Any] = {}
    for field in fields:
        if field.name not in form and field.kind != "checkbox":
            continue
        value = _value(field, form.get(field.name))
        target = data
        *parents, last = field.name.split(".")
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = value
    return _pruned(data)


def _value(field: FormField, raw: Any) -> Any:
    if field.kind == "checkbox":
        return raw not in (None, "", "off", "false", False)
    if not isinstance(raw, str):
        return raw
    text = raw.replace("\r\n", "\n")
    if not text.strip():
        return None
    if field.choices == EITHER:
        return text.strip() == "true"
    if field.kind == "number":
        return _number(text.strip())
    if field.kind == "list":
        return [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]
    if field.kind == "mapping":
        return dict(_pair(line) for line in text.splitlines() if line.strip())
    return text if field.multiline else text.strip()


def _number(text: str) -> int | float | str:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text  # validation names the field and says it is not a number


def _pair(line: str) -> tuple[str, Any]:
    key, _, value = line.partition("=")
    value = value.strip()
    lowered = value.lower()
    if lowered in ("true", "false"):
        return key.strip(), lowered == "true"
    number = _number(value)
    return key.strip(), number if value and not isinstance(
        number, str
    ) and "{" not in value else value


def _pruned(data: dict[str, Any]) -> dict[str, Any]:
    """A nested mapping whose every value is None is None itself (the key goes)."""
    for key, value in data.items():
        if isinstance(value, dict):
            inner = _pruned(value)
            data[key] = inner if any(item is not None for item in inner.values()) else None
    return data


def filled(fields: list[FormField], data: Mapping[str, Any]) -> dict[str, Any]:
    """A form's values from a sequence's data as the file has it (the inverse of `values`):
    lists joined with commas, mappings one `key=value` a line, absent keys left out."""
    shown: dict[str, Any] = {}
    for field in fields:
        value: Any = data
        for part in field.name.split("."):
            value = _get(value, part)
        if value is not _MISSING:
            shown[field.name] = _shown(value)
    return shown


_MISSING = object()


def _get(data: Any, key: str) -> Any:
    """`data[key]`, the key in either spelling (`due_in`, `dueIn`)."""
    from pydantic.alias_generators import to_camel

    if not isinstance(data, Mapping):
        return _MISSING
    return data.get(key, data.get(to_camel(key), _MISSING))


def _shown(value: Any) -> Any:
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    if isinstance(value, Mapping):
        return "\n".join(f"{key}={_shown(item)}" for key, item in value.items())
    if isinstance(value, bool) or value is None:
        return value
    return str(value)
