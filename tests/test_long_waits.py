"""A sequence's waits are 10 years at most each: refused over the API as validate refuses them,
and within them the engine's clock never overflows, even from the last year a user may give."""

from datetime import UTC, datetime, timedelta

import pytest
import yaml
from builders import sequence, step, write
from enrolling import apply, drain, enroll, enrollment, log
from serving import serving, token
from sqlalchemy import select, update

from nurture.channels import TemporaryFailure
from nurture.channels.memory import MemoryChannel
from nurture.engine.dispatch import next_due
from nurture.spec.times import LATEST_YEAR, LONGEST_WAIT, TEN_YEARS
from nurture.store.tables import Appointment, SequenceVersion, Task

BASE = "/api/nurturing-sequences"
LATE = datetime(LATEST_YEAR, 12, 31, 23, 0, tzinfo=UTC)  # the latest `run --now` a user may give
TEN = f"{LONGEST_WAIT.days}d"
TASK = {"name": "Call", "action_type": "create_task"}
TASK["action_config"] = {"title": "Call {{ lead.name }}", "due_in": TEN}
MEET = {"name": "Meet", "action_type": "schedule_appointment", "delay_days": LONGEST_WAIT.days}
MEET["action_config"] = {"title": "Meet", "after": TEN, "at": "23:30"}
WINDOW = {"days": "mon-fri", "start": "09:00", "end": "17:00", "holidays": "US"}
LONGEST = sequence(
    "Longest",
    step("Hello"),
    TASK,
    MEET,
    step("Bye", delay_days=LONGEST_WAIT.days),
    max_retries=4, retry_delay="456d 6h", retry_backoff=2,  # the 4th retry waits 3650d
    send_window=WINDOW,
)  # fmt: skip


@pytest.fixture
def api(run_store, project, store_url):
    """The API in read-write mode on an empty store, and a write token."""
    with serving(project, store_url, sequences="read-write") as client:
        client.headers.update(token(run_store, "admin", "write"))
        yield client


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (
            {"retryDelay": "10000000d"},
            "retryDelay",
            f"retryDelay: 10000000d is more than {TEN_YEARS}",
        ),
        (
            {"maxRetries": 20, "retryBackoff": 10},
            "maxRetries",
            f"maxRetries: retry 20 would wait 1.04e+17d (retry_delay × retry_backoff^19), more "
            f"than {TEN_YEARS}: lower max_retries, retry_backoff or retry_delay",
        ),
        (
            {"steps": [step("Hi", delayDays=10000000)]},
            "steps.0.delayDays",
            f"delayDays: 10,000,000 days is more than {TEN_YEARS}",
        ),
        (
            {"steps": [TASK | {"action_config": {"title": "Call", "due_in": "99999999d"}}]},
            "steps.0.action_config.due_in",
            f"due_in: 99999999d is more than {TEN_YEARS}",
        ),
    ],
)
def test_the_api_refuses_a_wait_over_ten_years_with_a_422_naming_the_field(
    api, change, field, message
):
    answer = api.post(BASE, json=sequence("Long", step("Hi")) | change)
    assert answer.status_code == 422, answer.text
    assert answer.json() == {"message": message, "field": field}
    assert api.get(BASE).json() == []


def test_the_longest_waits_from_the_last_year_allowed_never_overflow_the_clock(store, project):
    apply(store, project, LONGEST, now=LATE)
    enrollment_id = enroll(store, "Longest", now=LATE, timezone="Pacific/Kiritimati")  # UTC+14
    channel = MemoryChannel(behaviour=_refusing("Hello"))
    while (due := next_due(store)) is not None:
        drain(store, due, channel)
    assert [row[:2] for row in log(store, enrollment_id)] == [
        ("hello", 1), ("hello", 2), ("hello", 3), ("hello", 4), ("hello", 5),
        ("call", 1), ("meet", 1), ("bye", 1),
    ]  # fmt: skip
    assert enrollment(store, enrollment_id).status == "completed"
    with store.begin() as connection:
        due_at = connection.execute(select(Task.due_at)).scalar_one()
        starts_at = connection.execute(select(Appointment.starts_at)).scalar_one()
    retried = sum((timedelta(days=456.25) * 2**n for n in range(4)), timedelta())
    assert due_at == LATE + retried + LONGEST_WAIT
    assert starts_at.year == LATEST_YEAR + 39  # three 10-year waits and 18.7 years of retries
    assert channel.sent[-1].body.endswith("Bye") and channel.sent[-1].key.endswith(":1")


def test_a_version_stored_before_the_limits_still_runs(store, project):
    """A version applied by an older nurture with a longer wait is not refused by the engine."""
    apply(store, project, sequence("Old", step("Hello"), step("Later", delay_days=1)))
    enrollment_id = enroll(store, "Old")
    with store.begin(immediate=True) as connection:
        definition = connection.execute(select(SequenceVersion.definition)).scalar_one()
        definition |= {"retry_delay": "20000d"}
        connection.execute(update(SequenceVersion).values(definition=definition))
    channel = MemoryChannel()
    while (due := next_due(store)) is not None:
        drain(store, due, channel)
    assert enrollment(store, enrollment_id).status == "completed"
    assert [message.body for message in channel.sent] == ["Hi Sam, Hello", "Hi Sam, Later"]


def test_a_file_within_the_limits_applies_and_shows_its_plan(run_store, project):
    write(project, "longest.yaml", yaml.safe_dump(LONGEST, sort_keys=False))
    assert run_store("validate").exit_code == 0
    applied = run_store("apply", "--yes")
    assert applied.exit_code == 0, applied.output


def _refusing(text: str):
    def behaviour(message):
        if message.body.endswith(text):
            raise TemporaryFailure("503 from provider")

    return behaviour
