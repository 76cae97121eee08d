"""Times and spans users give (a test's start, `--now`, a stats window, an event's offset).

Python's datetime ends at the years 1 and 9999: a time near either end overflows as soon as a
delay, a send window or a time zone is applied to it (an OverflowError, a 500 over HTTP). A
time outside the years 1900-2999, or a span of more than 100 years, is refused with a clear
error instead; a sequence's own delays are bounded by its model.
"""

from datetime import datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator

from nurture.spec.durations import format_duration

EARLIEST_YEAR, LATEST_YEAR = 1900, 2999
LONGEST = timedelta(days=100 * 365)
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


UsableTime = Annotated[datetime, AfterValidator(check_time)]
"""A datetime in a model: out of range, a validation error naming its place."""
