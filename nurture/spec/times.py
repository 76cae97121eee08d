"""Times and spans users give (a test's start, `--now`, a stats window, an event's offset).

Python's datetime ends at the years 1 and 9999: a time near either end overflows as soon as a
delay, a send window or a time zone is applied to it (an OverflowError, a 500 over HTTP). A
time outside the years 1900-2999, or a span of more than 100 years, is refused with a clear
error instead. A sequence's own waits (a step's delay, a retry's, a task's `due_in`, an
appointment's `after`) are 10 years at most each, so the engine's clock, even at the end of
2999, stays far inside the calendar.
"""

from datetime import datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator, ValidationInfo

from nurture.spec.durations import format_duration

EARLIEST_YEAR, LATEST_YEAR = 1900, 2999
LONGEST = timedelta(days=100 * 365)
LONGEST_WAIT = timedelta(days=10 * 365)
"""The longest one wait of a sequence: a step's delay, a retry, a task's due_in, an appointment."""
TEN_YEARS = f"10 years ({LONGEST_WAIT.days}d), the longest a sequence waits"
STORED = {"stored": True}
"""The validation context of a stored version: applied before these limits, it loads as it was."""
PAST_THE_CALENDAR = (
    "the simulated clock went past the year 9999: a delay or retry delay is too long"
)


def check_time(moment: datetime) -> datetime:
    """The moment itself when its year is 1900-2999; ValueError otherwise."""
    if not EARLIEST_YEAR <= moment.year <= LATEST_YEAR:
        raise ValueError(
            f"{moment.isoformat()} is out of range: give a time in the years "
            f"{EARLIEST_YEAR}-{LATEST_YEAR}"
        )
    return moment


def check_span(span: timedelta) -> timedelta:
    """The span itself when it is 100 years at most; ValueError otherwise."""
    if span > LONGEST:
        raise ValueError(f"{format_duration(span)} is more than 100 years")
    return span


def check_wait(wait: timedelta, info: ValidationInfo | None) -> timedelta:
    """The wait itself when it is 10 years at most (or stored); ValueError otherwise."""
    if wait > LONGEST_WAIT and not is_stored(info):
        raise ValueError(f"{format_duration(wait)} is more than {TEN_YEARS}")
    return wait


def is_stored(info: ValidationInfo | None) -> bool:
    """Whether a model is validated from a stored version (see STORED), not from new input."""
    return bool(info and info.context and info.context.get("stored"))


UsableTime = Annotated[datetime, AfterValidator(check_time)]
"""A datetime in a model: out of range, a validation error naming its place."""
