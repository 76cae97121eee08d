"""The template library: ready-made sequences to start from (`nurture init --template`,
`nurture sequences new --from`, the dashboard's builder). Each is a YAML file in this folder,
valid, commented and with `tests:` cases; its template name is the file's name without `.yaml`.
"""

from dataclasses import dataclass
from functools import cache
from importlib import resources

import yaml

from nurture.errors import NotFound
from nurture.spec.categories import CATEGORIES
from nurture.spec.diagnostics import did_you_mean
from nurture.spec.edit import edit_text, set_key

SUFFIX = ".yaml"
BLANK = """\
# yaml-language-server: $schema=../schema/sequence.schema.json
name: {name}
description: ''
category: custom
funnels: []
steps:
  - id: first-message
    name: First message
    action_type: send_email
    action_config:
      subject: Hello {{{{ lead.first_name }}}}
      body: |
        Hi {{{{ lead.first_name }}}},

        {{{{ coach.name }}}}
"""
"""A sequence with nothing but one email: `nurture sequences new NAME` without a template."""


@dataclass(frozen=True)
class Template:
    """One template of the library: its name (the file's), the sequence it holds, its text."""

    name: str
    title: str
    category: str
    description: str
    steps: tuple[str, ...]
    """The action type of each step, in order."""
    text: str

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "title": self.title,
            "category": self.category,
            "description": self.description,
            "steps": len(self.steps),
            "actions": list(dict.fromkeys(self.steps)),
        }


@cache
def templates() -> tuple[Template, ...]:
    """Every template, by category (in the order categories are listed), then name."""
    folder = resources.files(__name__)
    found = [
        _template(entry.name.removesuffix(SUFFIX), entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(SUFFIX)
    ]
    return tuple(sorted(found, key=lambda t: (CATEGORIES.index(t.category), t.name)))


def _template(name: str, text: str) -> Template:
    data = yaml.safe_load(text)
    steps = tuple(str(step["action_type"]) for step in data["steps"])
    return Template(name, data["name"], data["category"], data["description"], steps, text)


def template_named(name: str) -> Template:
    """The template with this name (`webinar-follow-up`) or title (`Webinar Follow-Up`)."""
    wanted = name.strip().lower().replace(" ", "-").removesuffix(SUFFIX)
    for template in templates():
        if wanted in (template.name, template.title.lower().replace(" ", "-")):
            return template
    names = [template.name for template in templates()]
    raise NotFound(
        f"no template {name!r}{did_you_mean(wanted, names, by_word=True)} "
        f"(`nurture sequences templates` lists them: {', '.join(names)})"
    )


def sequence_text(name: str, template: str | None = None) -> str:
    """A new sequence file's text: the template renamed `name`, or a blank sequence."""
    if template is None:
        return BLANK.format(name=_scalar(name))
    text = template_named(template).text
    return edit_text(text, set_key("name", name)) if name else text


def _scalar(text: str) -> str:
    """`text` as a YAML value on one line (quoted when it must be)."""
    return yaml.safe_dump(text, default_style=None, width=10_000).removesuffix("\n...\n").strip()
