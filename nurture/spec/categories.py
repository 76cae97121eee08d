"""A sequence's category: snake_case, with the original system's spellings as aliases.

`follow-up`, `Follow Up` and `follow_up` are one category: every place that reads a category
(a sequence file, a CLI option, an API path or query) takes any of them.
"""

import re
from typing import Annotated, Any, Literal, get_args

from pydantic import BeforeValidator

from nurture.errors import BadFilter
from nurture.spec.diagnostics import did_you_mean

Canonical = Literal[
    "warm_lead", "cold_lead", "objection_handling", "reactivation", "follow_up", "custom"
]
CATEGORIES: tuple[str, ...] = get_args(Canonical)
_SEPARATORS = re.compile(r"[\s_-]+")


def canonical_category(value: Any) -> Any:
    """`Warm Lead`, `warm-lead`, `warm_lead` → `warm_lead`; anything else as given."""
    if not isinstance(value, str):
        return value
    key = _SEPARATORS.sub("_", value.strip().lower())
    return key if key in CATEGORIES else value


Category = Annotated[Canonical, BeforeValidator(canonical_category)]


def category_named(text: str, option: str = "--category") -> str:
    """The canonical category `text` spells; BadFilter naming the categories if none."""
    found = canonical_category(text)
    if found not in CATEGORIES:
        hint = did_you_mean(_SEPARATORS.sub("_", text.strip().lower()), CATEGORIES)
        raise BadFilter(
            f"{option} {text!r} is not a category{hint} (one of: {', '.join(CATEGORIES)})",
            field=option,
        )
    return str(found)
