"""The cap ledger in the store (issue 17): on Postgres a lead's next message is appended to its
row by the statement that locks it, when the caps allow it on what the row holds; the engine
decides on every other row. Both ways give the same ledger and the same holds."""

import json
from dataclasses import replace

import pytest
from enrolling import T0
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from test_caps import sms_job

from nurture.engine import caps as engine_caps
from nurture.rules.caps import Caps
from nurture.store import caps as ledger
from nurture.store.db import open_store

BENCH = {"messages": "2/day, 5/week", "sms": "1/day", "min_gap": "4h"}
NAMES = ["Welcome", 'Promo "VIP"', 'A], [1.0, "sms", 5, "hello", "B', "Ünï [x]"]
"""Sequence names; one holds what the ledger's text separates entries with."""


@pytest.fixture
def pg_store(postgres_url):
    with open_store(postgres_url) as store:
        yield store


def stored(connection, lead: int) -> str:
    return connection.exec_driver_sql(f"SELECT sent FROM lead_cap WHERE id = {lead}").scalar()


def put(connection, lead: int, entries: list) -> None:
    connection.execute(
        text("INSERT INTO lead_cap (id, sent) VALUES (:id, :sent)"),
        {"id": lead, "sent": json.dumps(entries)},
    )


def test_a_leads_second_message_is_appended_by_the_statement_that_locks_its_row(pg_store):
    caps, now = Caps.of(**BENCH), T0.timestamp()
    earlier = [now - 2 * 86400, "sms", 3, "hello", "Another sequence"]
    counting = ledger.Counting(now, now - 7 * 86400, 4 * 3600.0, caps.limits)
    with pg_store.begin() as connection:
        put(connection, 7, [earlier])
        first = {7: [[now, "sms", 11, "hello", "Welcome"]]}
        assert ledger.take(connection, first, counting) == {}  # nothing left to the engine
        assert json.loads(stored(connection, 7)) == [earlier, *first[7]]
    with pg_store.begin() as connection:  # the engine's way: the same text
        put(connection, 8, [earlier])
        assert engine_caps.hold(connection, [sms_job(11, 8, "Welcome")], caps, T0, "UTC") == 0
        assert stored(connection, 8) == json.dumps([earlier, *first[7]])


def test_a_row_the_statement_cannot_decide_on_is_locked_and_left_to_the_engine(pg_store):
    """An entry within the quiet gap, one of the same step (a retry), one no longer counting,
    a lead with two messages: each row comes back as it was, for the engine to decide."""
    caps, now = Caps.of(**BENCH), T0.timestamp()
    counting = ledger.Counting(now, now - 7 * 86400, 4 * 3600.0, caps.limits)
    rows = {
        1: [[now - 3600, "email", 9, "tip", "Drip"]],  # min_gap
        2: [[now - 86400 * 2, "sms", 12, "hello", "Welcome"]],  # this step counted already
        3: [[now - 86400 * 8, "sms", 9, "tip", "Drip"]],  # counts no more: to be dropped
        4: [[now - 86400 * 2, "sms", 9, "tip", "Drip"]],  # two messages this batch
    }
    with pg_store.begin() as connection:
        for lead, entries in rows.items():
            put(connection, lead, entries)
        first = {lead: [[now, "sms", 10 + lead, "hello", "Welcome"]] for lead in rows}
        assert ledger.take(connection, first, counting, several=[4]) == rows
        assert {lead: json.loads(stored(connection, lead)) for lead in rows} == rows


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    entries=st.lists(
        st.tuples(
            st.integers(-3600, 9 * 24 * 3600),  # age: a little in the future (another clock) too
            st.sampled_from(["sms", "email", "whatsapp"]),
            st.integers(0, 3),
            st.sampled_from(["hello", "tip"]),
            st.sampled_from(NAMES),
        ),
        max_size=6,
    ),
    channel=st.sampled_from(["sms", "email", "whatsapp"]),
    enrollment=st.integers(0, 3),
    texts=st.sampled_from(
        [
            BENCH,
            {"email": "3/36h"},
            {"messages": "1/hour"},
            {"min_gap": "2d"},
            {"sms": "2/week", "whatsapp": "1/day"},
            {"messages": "3/day"},
        ]
    ),  # fmt: skip
)
def test_the_store_and_the_engine_keep_the_same_ledger(
    pg_store, entries, channel, enrollment, texts
):
    """Whatever the row holds (sequence names with quotes and brackets, entries of the same
    step, entries that no longer count): the ledger and the holds are what the engine decides
    on the row's entries, and the row stays in time order."""
    caps, now = Caps.of(**texts), T0.timestamp()
    held = sorted([now - age, kind, n, step, name] for age, kind, n, step, name in entries)
    job = sms_job(enrollment, 5, "Welcome")
    job.message = replace(job.message, channel=channel)
    clock = engine_caps._Clock(T0, now, (T0 - caps.horizon).timestamp())
    plan = engine_caps._plan([job], [list(entry) for entry in held], caps, clock)
    with pg_store.begin() as connection:
        if held:
            put(connection, 5, held)
        deferred = engine_caps.hold(connection, [job], caps, T0, "UTC")
        after = json.loads(stored(connection, 5))
        connection.rollback()
    assert deferred == len(plan.holds)
    expected = plan.entries if plan.changed or not held else held
    assert sorted(after) == sorted(expected)
    assert after == sorted(after, key=lambda entry: entry[0])
