"""`nurture status`: daemons alive or dead (long-dead ones counted, not listed), sends to settle."""

import json
import signal
from datetime import UTC, datetime, timedelta

import pytest
from builders import sequence, step
from enrolling import apply, enroll
from sqlalchemy import func, insert, select, update
from test_daemon import start, wait_until
from test_settle import crash_mid_send, recently

from nurture.engine.daemon import Daemon, DaemonOptions, prune_workers
from nurture.store.db import Store
from nurture.store.tables import Worker


@pytest.fixture
def nurture(run_store, project):
    return run_store


def beat(store: Store, name: str, silent: timedelta) -> None:
    """A daemon's heartbeat row, its last beat `silent` ago."""
    now = datetime.now(UTC)
    row = {"id": name, "hostname": "box", "pid": 1, "started_at": now - silent - timedelta(hours=1)}
    with store.begin() as connection:
        connection.execute(insert(Worker).values(row | {"seen_at": now - silent, "executed": 7}))


def workers(store: Store) -> int:
    with store.begin() as connection:
        return connection.execute(select(func.count()).select_from(Worker)).scalar_one()


def test_a_silent_daemon_is_dead_and_one_dead_for_hours_is_counted_not_listed(nurture, store):
    beat(store, "alive", timedelta(seconds=2))
    beat(store, "dead", timedelta(minutes=2))
    beat(store, "dead-for-hours", timedelta(hours=3))
    beat(store, "dead-for-days", timedelta(days=2))
    report = json.loads(nurture("status", "--json").stdout)
    assert [(w["worker"], w["alive"]) for w in report["workers"]] == [
        ("dead", False),
        ("alive", True),
    ]
    assert report["hidden_workers"] == 2
    text = nurture("status").stdout
    rows = [line.replace("│", " ").split() for line in text.splitlines()]
    assert rows[3][:3] == ["dead", "box", "1"] and rows[3][-4:] == ["2m", "ago", "7", "dead"]
    assert rows[4][0] == "alive" and rows[4][-1] == "alive"
    assert "2 daemons dead for more than an hour not listed (`nurture status --all`)" in text
    every = json.loads(nurture("status", "--json", "--all").stdout)
    assert len(every["workers"]) == 4 and every["hidden_workers"] == 0
    assert workers(store) == 4  # status only reads

    with store.begin() as connection:  # what the daemon's maintenance tick runs
        assert prune_workers(connection, datetime.now(UTC)) == 1
    assert workers(store) == 3
    again = json.loads(nurture("status", "--json", "--all").stdout)
    assert "dead-for-days" not in [w["worker"] for w in again["workers"]]


def test_a_killed_daemon_shows_dead_once_its_heartbeats_stop(nurture, store, project, store_url):
    daemon = start(project, store_url)
    wait_until(lambda: workers(store) == 1)
    daemon.send_signal(signal.SIGKILL)
    daemon.communicate(timeout=30)
    [alive] = json.loads(nurture("status", "--json").stdout)["workers"]
    assert alive["alive"] is True  # only just killed: a few heartbeats are not missed yet
    with store.begin() as connection:  # a minute later
        connection.execute(update(Worker).values(seen_at=datetime.now(UTC) - timedelta(minutes=1)))
    [dead] = json.loads(nurture("status", "--json").stdout)["workers"]
    assert dead["alive"] is False and dead["silent_seconds"] >= 60


def test_status_counts_the_sends_waiting_to_be_settled_per_sequence(nurture, store, project):
    apply(store, project, sequence("Welcome", step("Hello")), sequence("Texts", step("Hi")))
    assert "waiting to be settled" not in nurture("status").stdout
    sent_at = recently()
    ids = [enroll(store, name, now=sent_at) for name in ("Welcome", "Welcome", "Texts")]
    crash_mid_send(store, ids, sent_at)
    report = json.loads(nurture("status", "--json").stdout)
    assert report["settle"] == {
        "waiting": 3,
        "sequences": {"Texts": 1, "Welcome": 2},
        "hint": "nurture enrollments settle --as sent|resend|stop",
    }
    assert (
        "sends waiting to be settled: 3 (Texts: 1, Welcome: 2); decide with "
        "`nurture enrollments settle --as sent|resend|stop` (it shows a plan first)"
    ) in nurture("status").stdout


def test_a_daemon_s_maintenance_tick_removes_daemons_dead_for_a_day(store):
    beat(store, "dead-for-days", timedelta(days=2))
    beat(store, "dead-an-hour", timedelta(hours=1))
    lines: list[str] = []
    daemon = Daemon(store, {}, DaemonOptions(), lambda: datetime.now(UTC), lines.append)
    daemon.rescue()  # the tick that also gives back expired leases
    assert workers(store) == 1
    assert lines[-1].endswith("pruned workers=1")
