"""Durations as users write them: `30m`, `2h`, `1d 4h`, `1w`, or a number of minutes."""

import re
from datetime import timedelta

PATTERN = r"^\s*(\d+|(\d+\s*[wdhmsWDHMS]\s*)+)\s*$"
"""What parse_duration takes as text, for the JSON Schema."""
_PART = re.compile(r"(\d+)\s*([wdhms])", re.IGNORECASE)
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def parse_duration(text: str | int | float | timedelta) -> timedelta:
    """Parse `1d 4h` style text (or minutes as a number); raise ValueError on anything else."""
    if isinstance(text, timedelta):
        return text
    if isinstance(text, bool):
        raise ValueError("a duration is text like '30m', '2h', '1d 4h' or a number of minutes")
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError("a duration cannot be negative")
        return _timedelta(text, minutes=text)
    compact = str(text).strip()
    if compact.isdigit():
        return _timedelta(text, minutes=int(compact))
    parts = _PART.findall(compact)
    if not parts or _PART.sub("", compact).strip():
        raise ValueError(f"{text!r} is not a duration (use e.g. '30m', '2h', '1d 4h', '1w')")
    return _timedelta(text, **_sum_units(parts))


def count_of(unit: str, value: object) -> object:
    """A count of `unit`s (days, hours, minutes) as given, or a duration (`2h`, `1d 4h`) in them:
    `delay_hours: 2h` is `delay_hours: 2`; a part of a unit (`delay_hours: 90m`) is an error."""
    if not isinstance(value, str) or value.strip().isdigit():
        return value  # a number: the field's own validation takes it
    size = timedelta(**{unit: 1})
    count, rest = divmod(parse_duration(value), size)
    if rest:
        raise ValueError(f"{value!r} is not a whole number of {unit}: write `delay: {value}`")
    return count


def _timedelta(text: object, **units: float) -> timedelta:
    try:
        return timedelta(**units)
    except (OverflowError, ValueError):  # 1e20 minutes, or NaN
        raise ValueError(f"{text!r} is not a usable duration (too long, or not a number)") from None


def _sum_units(parts: list[tuple[str, str]]) -> dict[str, int]:
    units: dict[str, int] = {}
    for amount, unit in parts:
        key = _UNITS[unit.lower()]
        units[key] = units.get(key, 0) + int(amount)
    return units


def format_duration(delta: timedelta) -> str:
    """The shortest `1d 4h 30m` form of a duration."""
    seconds = int(delta.total_seconds())
    if seconds == 0:
        return "0m"
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        amount, seconds = divmod(seconds, size)
        if amount:
            out.append(f"{amount}{unit}")
    return " ".join(out)
