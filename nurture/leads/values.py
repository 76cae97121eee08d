"""A lead's data as given (LeadInput), checked and normalised into column values (clean)."""

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from nurture.leads.fields import (
    MAX_LENGTH,
    MOST_TAGS,
    PHONE_AS_GIVEN,
    SCORE_DIGITS,
    TAG_LENGTH,
    InvalidLead,
    check_field,
    check_text,
    shown,
)
from nurture.rules.contacts import ContactError, first_name, normalize_email, normalize_phone
from nurture.settings import Settings
from nurture.spec.window import check_time_zone


@dataclass(frozen=True)
class LeadRules:
    """The project settings leads follow."""

    default_zone: str = "UTC"
    conversion_statuses: tuple[str, ...] = ("Converted", "Won", "Client")
    phone_region: str | None = None
    identity: tuple[str, ...] = ("external_id", "email", "phone")
    """The keys an arriving lead is matched by, in order (settings.leads.identity)."""
    _converting: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        folded = frozenset(status.casefold() for status in self.conversion_statuses)
        object.__setattr__(self, "_converting", folded)  # asked once per lead an import adds

    @classmethod
    def from_settings(cls, settings: Settings) -> "LeadRules":
        return cls(
            settings.timezone,
            tuple(settings.conversion_statuses),
            settings.phone_region,
            tuple(settings.leads.identity),
        )

    def converts(self, status: str | None) -> bool:
        """True when the status counts as converted (case ignored)."""
        return status is not None and status.casefold() in self._converting


@dataclass
class LeadInput:
    """A lead's data as given (CLI, import row); None means not given."""

    name: str | None = None
    email: str | None = None
    phone: str | None = None
    source: str | None = None
    status: str | None = None
    temperature: str | None = None
    score: int | str | None = None
    tags: list[str] | None = None
    timezone: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    external_id: str | None = None


TEXT_FIELDS = ("source", "status", "temperature", "external_id")


def clean(data: LeadInput, phone_region: str | None = None) -> dict[str, Any]:
    """Column values of the fields given, validated and normalised; InvalidLead says what is wrong."""
    given = vars(data)  # the dataclass's own dict: an import cleans every row (not getattr)
    _check_given(given)
    values: dict[str, Any] = {}
    if data.name is not None:
        if not (name := data.name.strip()):
            raise InvalidLead("name is empty", "name")
        values["name"] = name
        # derived, so cut to its column: a one-word name may be longer than first_name's
        values["first_name"] = first_name(name)[: MAX_LENGTH["first_name"]]
    if data.email:
        values["email"] = _contact("email", normalize_email, data.email)
    if data.phone:
        values["phone"] = _contact(
            "phone", partial(normalize_phone, region=phone_region), data.phone
        )
    for key in TEXT_FIELDS:
        if text := given[key]:
            values[key] = text.strip()
    if data.score is not None and data.score != "":
        values["score"] = _score(data.score)
    if data.timezone:
        values["timezone"] = _zone(data.timezone.strip())
    if data.tags is not None:
        values["tags"] = list(dict.fromkeys(t.strip() for t in data.tags if t.strip()))
    if data.fields:
        values["fields"] = dict(data.fields)
    return values


def _contact(field: str, normalize: Callable[[str], str], text: str) -> str:
    try:
        return normalize(text)
    except ContactError as error:
        raise InvalidLead(str(error), field) from None


_CHECKED = {key: MAX_LENGTH[key] for key in ("name", "email", "timezone", *TEXT_FIELDS)}
_CHECKED["phone"] = PHONE_AS_GIVEN


def _check_given(given: dict[str, Any]) -> None:
    """Every text given can be stored: none holds a NUL or a lone surrogate or is over its limit."""
    for key, limit in _CHECKED.items():
        text = given[key]
        # at a glance first (what passes here passes stripped too): an import checks millions
        if text is not None and (len(text) > limit or "\x00" in text or not text.isascii()):
            check_text(key, text.strip(), limit)
    tags = given["tags"]
    if tags is not None and len(tags) > MOST_TAGS:
        raise InvalidLead(f"{len(tags):,} tags, over the limit of {MOST_TAGS}", "tags")
    for tag in tags or ():
        check_text("tags", tag.strip(), TAG_LENGTH, "tag", quoted=True)
    for name, value in given["fields"].items():
        check_field(name, value)


def _score(value: int | str) -> int:
    text = value.strip() if isinstance(value, str) else str(value)
    try:
        if len(text) > SCORE_DIGITS:  # not a score (and int() refuses 5,000 digits anyway)
            raise ValueError(text)
        score = int(text)
    except ValueError:
        raise InvalidLead(f"score {shown(text)} is not a whole number", "score") from None
    if not 0 <= score <= 100:
        raise InvalidLead(f"score {score} is out of range 0-100", "score")
    return score


def _zone(name: str) -> str:
    try:
        return check_time_zone(name)
    except ValueError as error:
        raise InvalidLead(f"time zone: {error}", "timezone") from None
