"""What a lead's values may hold, the same for the CLI, an import and the API.

Text fields are at most as long as their store column (nurture.store.tables), and no text
holds a NUL character (Postgres cannot store it) or a lone surrogate (no valid UTF-8 for it).
A value over its limit is refused, naming the field and the limit, never cut short.
"""

import math
import re
from typing import Any

from nurture.errors import InvalidLead
from nurture.store.tables import Lead

MAX_LENGTH: dict[str, int] = {
    column.name: length
    for column in Lead.__table__.columns
    if (length := getattr(column.type, "length", None))  # sqlmodel's AutoString has one too
}
"""The lead columns' lengths: name 200, first_name 100, email 320, external_id 200..."""
PHONE_AS_GIVEN = 40
"""A phone number before it is normalised (spaces, dashes, a `whatsapp:` prefix); E.164 is 16."""
TAG_LENGTH = 100
MOST_TAGS = 100
FIELD_NAME_LENGTH = 100
FIELD_TEXT_LENGTH = 10_000
"""A custom field's text: a note, an answer to a form's question, not a document."""
FIELD_DEPTH = 10
"""Lists and objects in a custom field (the API's JSON) nest this deep at most."""
LARGEST_NUMBER = 10**18
SCORE_DIGITS = 10

_SURROGATE = re.compile("[\ud800-\udfff]")


def text_problem(text: str) -> str | None:
    """Why the text cannot be stored (a NUL, a lone surrogate), or None."""
    if "\x00" in text:
        return "contains a NUL character (\\x00): remove it"
    if (found := _SURROGATE.search(text)) is not None:
        return f"contains a lone surrogate ({found.group()!r}), which is not valid Unicode text"
    return None


def plain_text(text: str) -> str:
    """The text itself when it can be stored; ValueError saying why not (a pydantic validator)."""
    if (problem := text_problem(text)) is not None:
        raise ValueError(problem)
    return text


def check_text(
    field: str, text: str, limit: int | None = None, label: str | None = None, quoted: bool = False
) -> str:
    """The text when it can be stored in `field`; InvalidLead names the field (or `label`, as
    `tag`, followed by the text when `quoted`) and the problem. The limit defaults to the
    field's column length."""
    limit = limit or MAX_LENGTH.get(field) or len(text)
    if _plain(text, limit):
        return text  # most text: checked at a glance (an import checks millions)
    what = (label or field) + (f" {shown(text)}" if quoted else "")
    if (problem := text_problem(text)) is not None:
        raise InvalidLead(f"{what} {problem}", field)
    if len(text) > limit:
        raise InvalidLead(
            f"{what} is {len(text):,} characters long, over the limit of {limit:,}", field
        )
    return text


def _plain(text: str, limit: int) -> bool:
    """True when the text surely can be stored: ASCII without NUL, within the limit."""
    return len(text) <= limit and "\x00" not in text and text.isascii()


def check_field(name: str, value: Any) -> Any:
    """A custom field's name and value, checked: text (limited), finite numbers, true/false,
    null, and lists and objects of them nested up to FIELD_DEPTH."""
    if (
        isinstance(value, str)
        and _plain(name, FIELD_NAME_LENGTH)
        and _plain(value, FIELD_TEXT_LENGTH)
    ):
        return value  # the usual custom field (a CSV cell): checked at a glance
    check_text("fields", name, FIELD_NAME_LENGTH, "custom field name", quoted=True)
    _check_value(f"fields.{name}", value, 0)
    return value


def _check_value(field: str, value: Any, depth: int) -> None:
    if depth > FIELD_DEPTH:
        raise InvalidLead(f"{field} nests lists or objects over {FIELD_DEPTH} deep", field)
    if isinstance(value, str):
        check_text(field, value, FIELD_TEXT_LENGTH)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int | float):
        _check_number(field, value)
    elif isinstance(value, list):
        for item in value:
            _check_value(field, item, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(field, str(key), FIELD_NAME_LENGTH, f"{field}'s key", quoted=True)
            _check_value(f"{field}.{key}", item, depth + 1)


def _check_number(field: str, value: float) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidLead(f"{field} is {value}, not a usable number", field)
    if abs(value) >= LARGEST_NUMBER:
        raise InvalidLead(f"{field} is a number over 18 digits long: give it as text", field)


def shown(text: str, most: int = 40) -> str:
    """The text quoted for a message, cut short when long (an error must not echo a huge cell)."""
    return repr(text) if len(text) <= most else f"{text[:most]!r}... ({len(text):,} characters)"
