"""A sequence being built: its YAML text, changed by one operation at a time.

Every operation takes the text and gives the new text; what it does not change stays as it
was, byte for byte (comments, key order, quotes): `git diff` shows only what the coach did.
"""

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic.alias_generators import to_snake
from sqlmodel import Session

from nurture.errors import NotFound, SpecError
from nurture.project import library, stored
from nurture.project.layout import Project
from nurture.spec import forms, step_order
from nurture.spec.actions import ActionType
from nurture.spec.diagnostics import Diagnostic
from nurture.spec.durations import format_duration, parse_duration
from nurture.spec.edit import ATOMIC, chain, edit_text, update
from nurture.spec.loader import load_yaml
from nurture.spec.names import slugify

STEP_ORDER: tuple[str, ...] = ("id", "name", "step_number", "description", "action_type")
STEP_ORDER += ("action_config",)
STEP_ORDER += (
    "delay",
    "delay_days",
    "delay_hours",
    "delay_minutes",
    "conditions",
    "active",
    "stop",
)
"""Where a key a step lacks goes: after the keys before it here."""
NEW_STEPS: dict[ActionType, tuple[str, dict[str, Any]]] = {
    ActionType.SEND_WHATSAPP_MESSAGE: (
        "WhatsApp message",
        {"message": "Hi {{ lead.first_name }}, it's {{ coach.name }}. How are things going?"},
    ),
    ActionType.SEND_EMAIL: (
        "Email",
        {
            "subject": "A quick note, {{ lead.first_name }}",
            "body": "Hi {{ lead.first_name }},\n\n\n\n{{ coach.name }}\n",
        },
    ),
    ActionType.SEND_SMS: (
        "Text message",
        {"message": "Hi {{ lead.first_name }}, {{ coach.name }} here. Just checking in!"},
    ),
    ActionType.CREATE_TASK: (
        "Task",
        {"title": "Call {{ lead.name }}", "due_in": "1d", "priority": "normal"},
    ),
    ActionType.UPDATE_LEAD_SCORE: ("Score change", {"add": 10}),
    ActionType.ADD_LEAD_TAG: ("Tag", {"tags": ["engaged"]}),
    ActionType.SCHEDULE_APPOINTMENT: (
        "Appointment",
        {"title": "Call with {{ lead.first_name }}", "after": "1d", "duration_minutes": 30},
    ),
    ActionType.SEND_NOTIFICATION: (
        "Notification",
        {"message": "{{ lead.name }} reached this step of {{ sequence.name }}."},
    ),
    ActionType.WAIT: ("Wait", {}),
}
"""A new step of each action type: its name and a config that validates and reads sensibly."""


@dataclass(frozen=True)
class Draft:
    """A sequence's text, the file it is saved to, and what it was when the builder opened it."""

    text: str
    path: Path
    slug: str | None = None
    """The slug of the sequence opened; None: a new sequence."""
    base: str | None = None
    """sha256 of its file when opened (of its definition: a sequence in the store alone)."""

    @property
    def new(self) -> bool:
        return self.slug is None


def fingerprint(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def open_draft(project: Project, name: str) -> Draft:
    """The draft of a sequence of the project: its file as it is now."""
    file = project.file_of(name)
    content = file.path.read_bytes()
    return Draft(content.decode("utf-8"), file.path, file.spec.slug, fingerprint(content))


def stored_draft(session: Session, project: Project, name: str) -> Draft:
    """The draft of a sequence that lives in the store alone (created over HTTP)."""
    row = stored.resolve(session, name)
    text = stored.export_text(stored.current_spec(session, row))
    return Draft(text, project.sequences_dir / f"{row.slug[:100]}.yaml", row.slug, row.fingerprint)


def new_draft(project: Project, name: str, template: str | None = None) -> Draft:
    """A new sequence called `name`, from a template of the library or blank; not written."""
    text = library.sequence_text(name, template)
    slug = slugify(name) or "sequence"
    return Draft(text, project.sequences_dir / f"{slug[:100]}.yaml")


def data(text: str) -> dict[str, Any]:
    """The text's data as the file spells it; SpecError when it is not usable YAML."""
    loaded = load_yaml(text, "draft")
    if loaded.document is None:
        raise SpecError(loaded.diagnostics)
    return loaded.document.data


def _steps(text: str) -> list[dict[str, Any]]:
    steps = data(text).get("steps")
    return [step for step in steps if isinstance(step, dict)] if isinstance(steps, list) else []


def _step(text: str, index: int) -> dict[str, Any]:
    steps = _steps(text)
    if not 0 <= index < len(steps):
        raise NotFound(f"no step {index + 1}: the sequence has {len(steps)}")
    return steps[index]


def _get(step: dict[str, Any], key: str) -> Any:
    return next((value for k, value in step.items() if to_snake(k) == key), None)


def step_id(step: dict[str, Any]) -> str:
    """A step's id as the sequence has it: its `id`, else its name's slug."""
    return str(_get(step, "id") or slugify(str(_get(step, "name") or "")) or "step")


def add_step(text: str, action: ActionType | str, index: int | None = None) -> str:
    """A new step of `action` at `index` (None: last), with a config that validates."""
    action = ActionType(action)
    label, config = NEW_STEPS[action]
    taken = {step_id(step) for step in _steps(text)}
    name = next(
        f"{label} {n}" if n > 1 else label
        for n in range(1, len(taken) + 2)
        if slugify(f"{label} {n}" if n > 1 else label) not in taken
    )
    step: dict[str, Any] = {"name": name, "action_type": action.value}
    if config:
        step["action_config"] = config
    if taken and index != 0:
        step["delay_days"] = 1  # a day after the step before: change it in the step's form
    return _renumbered(step_order.insert_step(text, step, index))


def move_step(text: str, source: int, target: int) -> str:
    """The step at `source` moved to `target` (0-based, the index it has after the move)."""
    count = len(_steps(text))
    for index in (source, target):
        if not 0 <= index < count:
            raise NotFound(f"no step {index + 1}: the sequence has {count}")
    if source == target:
        return text
    return _renumbered(step_order.move_step(text, source, target))


def move_up(text: str, index: int) -> str:
    """The step one place earlier (the first stays first): the keyboard's reorder."""
    return move_step(text, index, max(index - 1, 0))


def move_down(text: str, index: int) -> str:
    """The step one place later (the last stays last)."""
    return move_step(text, index, min(index + 1, len(_steps(text)) - 1))


def remove_step(text: str, index: int) -> str:
    _step(text, index)
    return _renumbered(step_order.remove_step(text, index))


def toggle_step(text: str, index: int) -> str:
    """Switch a step off (`active: false`) or on again."""
    active = _get(_step(text, index), "active")
    return edit_text(text, update({"active": active is False}, "steps", index))


def edit_step(text: str, index: int, values: dict[str, Any]) -> str:
    """Set a step's fields (`forms.values` of its form): name, delay, action config...

    A renamed step without an `id` keeps its old one (leads in flight keep their place), and
    a new action type's config replaces the old one's (else config keys set to None go)."""
    step = _step(text, index)
    values = dict(values)
    if "delay" in values:
        values |= _delay(step, values.pop("delay"))
    if "name" in values and _get(step, "id") is None and values["name"] != _get(step, "name"):
        values.setdefault("id", step_id(step))
    config, current = values.get("action_config"), _get(step, "action_config")
    changes_type = values.get("action_type", _get(step, "action_type")) != _get(step, "action_type")
    if changes_type and isinstance(current, dict):
        values["action_config"] = {to_snake(key): None for key in current} | (config or {})
    fields = [*forms.STEP_FIELDS, *forms.condition_fields()]
    action = values.get("action_type", _get(step, "action_type"))
    fields += forms.action_fields(action) if action in {a.value for a in ActionType} else []
    values = _without_defaults(values, step, {field.name: field.default for field in fields})
    ordered = {key: values[key] for key in sorted(values, key=_step_rank)}
    return edit_text(text, update(ordered, "steps", index))


def _without_defaults(
    values: dict[str, Any], current: dict[str, Any], defaults: dict[str, Any], prefix: str = ""
) -> dict[str, Any]:
    """`values` but those a form sends at their default for a key the file does not have:
    an untouched form adds no line to the file."""
    kept: dict[str, Any] = {}
    for key, value in values.items():
        present = _get(current, key)
        if isinstance(value, dict) and key not in ATOMIC:
            inner = present if isinstance(present, dict) else {}
            value = _without_defaults(value, inner, defaults, f"{prefix}{key}.")
            if not value and present is None:
                continue
        elif present is None and _is_default(value, defaults, f"{prefix}{key}"):
            continue
        kept[key] = value
    return kept


def _is_default(value: Any, defaults: dict[str, Any], name: str) -> bool:
    return name in defaults and (value is None or value == defaults[name])


def _step_rank(key: str) -> int:
    return STEP_ORDER.index(key) if key in STEP_ORDER else len(STEP_ORDER)


def _delay(step: dict[str, Any], value: Any) -> dict[str, Any]:
    """The delay keys to write: `delay: 1d 4h` where the step has it, else delay_days/hours/minutes."""
    wanted = parse_duration(value) if value not in (None, "") else None
    current = _current_delay(step)
    if wanted is None or wanted == current:
        return {}
    if _get(step, "delay") is not None:
        return {"delay": format_duration(wanted)}
    minutes = int(wanted.total_seconds()) // 60
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    written = {key: _get(step, key) for key in ("delay_days", "delay_hours", "delay_minutes")}
    new = {"delay_days": days, "delay_hours": hours, "delay_minutes": minutes}
    return {key: None if not n and written[key] is None else n for key, n in new.items()}


def _current_delay(step: dict[str, Any]) -> Any:
    if _get(step, "delay") is not None:
        return parse_duration(_get(step, "delay"))
    units = {unit: _get(step, f"delay_{unit}") or 0 for unit in ("days", "hours", "minutes")}
    try:
        return parse_duration(f"{units['days']}d {units['hours']}h {units['minutes']}m")
    except ValueError:
        return None


def edit_settings(text: str, values: dict[str, Any]) -> str:
    """Set the sequence's own fields (`forms.values` of the settings form)."""
    fields = forms.settings_fields()
    order = [field.name.split(".")[0] for field in fields]
    values = _without_defaults(values, data(text), {field.name: field.default for field in fields})
    ordered = {key: values[key] for key in sorted(values, key=_rank_in(order))}
    return edit_text(text, update(ordered))


def _rank_in(order: list[str]) -> Any:
    return lambda key: order.index(key) if key in order else len(order)


def _renumbered(text: str) -> str:
    """Steps that carry a `step_number` numbered again in list order (the seed's files do)."""
    edits = [
        update({"step_number": index + 1}, "steps", index)
        for index, step in enumerate(_steps(text))
        if _get(step, "step_number") is not None and _get(step, "step_number") != index + 1
    ]
    return edit_text(text, chain(*edits)) if edits else text


def step_rows(text: str) -> list[dict[str, Any]]:
    """The step list as the builder shows it: id, name, action, delay, active."""
    return [
        {
            "index": index,
            "id": step_id(step),
            "name": _get(step, "name"),
            "action_type": _get(step, "action_type"),
            "delay": _shown_delay(step),
            "active": _get(step, "active") is not False,
            "conditions": bool(_get(step, "conditions")),
        }
        for index, step in enumerate(_steps(text))
    ]


def _shown_delay(step: dict[str, Any]) -> str:
    delay = _current_delay(step)
    return format_duration(delay) if delay else "0"


def step_form(text: str, index: int) -> dict[str, Any]:
    """A step's form filled from the file: its fields, its conditions, its action's config."""
    step = _step(text, index)
    action = _get(step, "action_type")
    fields = [*forms.STEP_FIELDS, *forms.condition_fields()]
    if action in {a.value for a in ActionType}:
        fields += forms.action_fields(action)
    filled = forms.filled(fields, step) | {"delay": _shown_delay(step)}
    return filled | {"action_type": action}


def settings_form(text: str) -> dict[str, Any]:
    return forms.filled(forms.settings_fields(), data(text))


def diagnostics_by_field(diagnostics: list[Diagnostic]) -> dict[str, list[Diagnostic]]:
    """Diagnostics by the dotted field they are about (`steps.2.action_config.message`), in
    canonical spelling, so a page puts each beside its field; '' for those about no field."""
    found: dict[str, list[Diagnostic]] = {}
    for diagnostic in diagnostics:
        key = ".".join(to_snake(str(part)) for part in diagnostic.path)
        found.setdefault(key, []).append(diagnostic)
    return found
