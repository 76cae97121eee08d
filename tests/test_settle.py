"""`nurture enrollments settle`: sends whose fate is unclear, decided in bulk, on both stores."""

import json
import signal
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from builders import sequence, step
from enrolling import apply, drain, enroll, enrollment, executions, log, set_enrollment
from servers import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from sqlalchemy import func, select
from test_crash_send import daemon
from test_daemon import wait_until

from nurture.channels.memory import MemoryChannel
from nurture.cli import enrollments as enrollments_cli
from nurture.engine.delivery import settle
from nurture.store import bulk, queries
from nurture.store.db import Store
from nurture.store.tables import Enrollment, Execution
from nurture.testing import enroll_many

TUESDAY = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # 10:00 in New York; Thursday is Thanksgiving
WINDOW = {"days": "mon-fri", "start": "09:00", "end": "17:00", "holidays": "US"}


@pytest.fixture
def nurture(run_store, project):
    return run_store


def recently() -> datetime:
    return datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def crash_mid_send(store: Store, ids: list[int], at: datetime) -> None:
    """A daemon killed between `sending` and `sent` of each enrollment's step, at `at`; the
    next daemon finds the `sending` rows and holds the enrollments `unknown`."""
    with store.begin(immediate=True) as connection:
        rows = connection.execute(
            select(Enrollment.__table__).where(bulk.among(connection, Enrollment.id, ids))
        ).all()
        sending = [
            {
                "enrollment_id": row.id,
                "lead_id": row.lead_id,
                "sequence_id": row.sequence_id,
                "version": row.version,
                "step_id": row.step_id,
                "action_type": "send_sms",
                "attempt": row.attempts + 1,
                "status": "sending",
                "due_at": row.next_run_at,
                "started_at": at,
                "finished_at": None,
                "detail": None,
            }
            for row in rows
        ]
        bulk.insert(connection, Execution.__table__, sending)
    drain(store, at + timedelta(minutes=1))
    assert {enrollment(store, i).status for i in ids} == {"unknown"}


def two_step(name: str = "Welcome", **fields) -> dict:
    return sequence(name, step("Hello"), step("Later", delay_days=1), **fields)


def test_settling_as_sent_moves_each_lead_on_without_sending_again(nurture, store, project):
    apply(store, project, two_step(), sequence("Texts", step("Hi"), step("Bye")))
    sent_at = recently()
    welcome = [enroll(store, "Welcome", now=sent_at, name=f"Lead {n}") for n in range(3)]
    texts = enroll(store, "Texts", now=sent_at)
    crash_mid_send(store, [*welcome, texts], sent_at)

    result = nurture("enrollments", "settle", "--as", "sent", "--sequence", "welcome", "--yes")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    at = f"{sent_at:%Y-%m-%d %H:%M}"
    assert lines[0] == f"3 sends of unclear fate, started at {at} UTC:"
    assert any(
        line.split() == ["Welcome", "hello", "3", *at.split(), *at.split()]
        for line in (row.replace("│", " ") for row in lines)
    )
    assert "--as sent will mark each send sent and move its enrollment on" in result.stdout
    assert result.stderr.splitlines()[-1] == "settled 3 sends as sent (3 active)"

    for enrollment_id in welcome:
        moved = enrollment(store, enrollment_id)
        assert (moved.status, moved.step_id, moved.attempts) == ("active", "later", 0)
        assert moved.next_run_at == sent_at + timedelta(days=1)  # the delay counts from the send
        hello, control = executions(store, enrollment_id)
        assert (hello.step_id, hello.status, hello.error) == ("hello", "sent", None)
        assert hello.detail["settled"]["as"] == "sent"
        assert hello.detail["settled"]["by"].endswith("(cli)")
        assert "a send may have happened" in hello.detail["settled"]["error"]
        assert (control.step_id, control.status) == ("@control", "settled")
        assert control.detail | {"by": "", "at": ""} == {
            "step_id": "hello",
            "from": "unknown",
            "as": "sent",
            "by": "",
            "at": "",
        }
    assert enrollment(store, texts).status == "unknown"  # another sequence: not chosen

    channel = MemoryChannel()
    drain(store, sent_at + timedelta(days=1), channel)
    assert channel.bodies() == ["Hi Lead, Later"] * 3
    assert {enrollment(store, i).status for i in welcome} == {"completed"}


def test_a_send_settled_as_sent_schedules_the_next_step_in_its_window(store, project):
    steps = [step("Hi"), step("Check in", delay_days=2)]
    apply(store, project, sequence("Welcome", *steps, send_window=WINDOW))
    soon, late = (
        enroll(store, "Welcome", now=TUESDAY, timezone="America/New_York") for _ in range(2)
    )
    crash_mid_send(store, [soon, late], TUESDAY)

    def settle_at(enrollment_id: int, now: datetime) -> None:
        with store.session(immediate=True) as session:
            chosen = settle.Filters(enrollments=(enrollment_id,))
            planned = settle.plan(session, "sent", chosen)
            settle.settle(session, planned, now, "test", "UTC")

    settle_at(soon, TUESDAY + timedelta(hours=3))  # settled the same day
    # Two days after the send is Thanksgiving: Friday 9:00 in New York
    assert enrollment(store, soon).next_run_at == datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
    settle_at(late, datetime(2026, 11, 28, 12, 0, tzinfo=UTC))  # a Saturday: overdue already
    assert enrollment(store, late).next_run_at == datetime(2026, 11, 30, 14, 0, tzinfo=UTC)
    [hi, _] = executions(store, late)
    assert hi.detail["next"] == {
        "step": "check-in",
        "at": "2026-11-30T14:00:00+00:00",
        "reasons": [
            "Sat 2026-11-28 is outside the send window days (mon, tue, wed, thu, fri)",
            "Sun 2026-11-29 is outside the send window days (mon, tue, wed, thu, fri)",
        ],
    }


def test_resend_sends_again_as_a_new_attempt_and_stop_ends_the_enrollment(nurture, store, project):
    apply(store, project, sequence("Welcome", step("Hello")))
    sent_at = recently()
    again, stopped, last = (enroll(store, "Welcome", now=sent_at) for _ in range(3))
    crash_mid_send(store, [again, stopped, last], sent_at)

    resend = nurture("enrollments", "settle", "--as", "resend", "-e", str(again), "--yes")
    assert resend.stderr.splitlines()[-1] == "settled 1 send as resend (1 active)"
    back = enrollment(store, again)
    assert (back.status, back.step_id, back.attempts) == ("active", "hello", 1)
    assert back.next_run_at <= datetime.now(UTC) and back.exit_reason is None
    channel = MemoryChannel()
    drain(store, datetime.now(UTC), channel)
    assert [m.key for m in channel.sent] == [f"{again}:hello:2"]  # a new attempt
    assert log(store, again) == [
        ("hello", 1, "unknown"),
        ("@control", 1, "settled"),
        ("hello", 2, "sent"),
    ]
    assert enrollment(store, again).status == "completed"

    stop = nurture("enrollments", "settle", "--as", "stop", "-e", str(stopped), "--yes")
    assert stop.stderr.splitlines()[-1] == "settled 1 send as stop (1 stopped)"
    ended = enrollment(store, stopped)
    assert ended.status == "stopped" and ended.finished_at is not None
    assert ended.exit_reason == (
        "stopped by hand: the send of step hello had an unclear fate (settled)"
    )
    assert log(store, stopped) == [("hello", 1, "unknown"), ("@control", 1, "settled")]

    sent = nurture("enrollments", "settle", "--as", "sent", "-e", str(last), "--yes")
    assert sent.stderr.splitlines()[-1] == "settled 1 send as sent (1 completed)"
    done = enrollment(store, last)
    assert (done.status, done.exit_reason) == ("completed", "completed")


def test_without_yes_and_without_a_terminal_nothing_is_settled(nurture, store, project):
    apply(store, project, two_step(), sequence("Texts", step("Hi"), step("Bye")))
    first, second = recently() - timedelta(hours=2), recently()
    early = [enroll(store, "Welcome", now=first) for _ in range(2)]
    crash_mid_send(store, early, first)
    later = enroll(store, "Texts", now=second)
    crash_mid_send(store, [later], second)

    refused = nurture("enrollments", "settle", "--as", "stop")
    assert refused.exit_code == 1
    assert (
        "error: refusing to settle 3 sends without a terminal to confirm on; add --yes"
        in refused.stderr
    )
    assert "3 sends of unclear fate" in refused.stdout  # the plan was shown first
    assert {enrollment(store, i).status for i in [*early, later]} == {"unknown"}

    since = (second - timedelta(minutes=5)).isoformat()
    data = json.loads(
        nurture("enrollments", "settle", "--as", "stop", "--since", since, "--json", "--yes").stdout
    )
    assert data["plan"]["count"] == 1
    assert data["plan"]["groups"] == [
        {
            "sequence": "Texts",
            "step": "hi",
            "count": 1,
            "oldest": second.isoformat(),
            "newest": second.isoformat(),
        }
    ]
    assert data["settled"] == {"as": "stop", "settled": 1, "gone": 0, "statuses": {"stopped": 1}}
    assert {enrollment(store, i).status for i in early} == {"unknown"}


def test_nothing_to_settle_says_so_and_succeeds(nurture, store, project):
    apply(store, project, two_step())
    result = nurture("enrollments", "settle", "--as", "sent")
    assert result.exit_code == 0
    assert "nothing to settle: no send waits for a decision" in result.stderr
    filtered = nurture("enrollments", "settle", "--as", "sent", "--step", "later", "--json")
    assert json.loads(filtered.stdout)["plan"]["count"] == 0
    assert "among those chosen" in filtered.stderr
    beyond = nurture("enrollments", "settle", "--as", "sent", "--enrollment", str(2**40))
    assert beyond.exit_code == 0 and "nothing to settle" in beyond.stderr, beyond.stderr


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--as", "snt"), "unknown decision 'snt' (did you mean 'sent'?)"),
        (("--as", "maybe"), "unknown decision 'maybe' (one of sent, resend, stop)"),
        (
            ("--as", "sent", "--sequence", "Welcom"),
            "no sequence 'Welcom' in the store (did you mean 'Welcome'?)",
        ),
        (("--as", "sent", "--step", "helo"), "no step 'helo' (did you mean 'hello'?)"),
        (
            ("--as", "sent", "--since", "last week"),
            "--since 'last week': use a duration (7d, 12h, 2w) or a date (2026-11-01)",
        ),
    ],
)
def test_a_bad_decision_or_filter_is_an_error_not_an_empty_plan(
    nurture, store, project, args, said
):
    apply(store, project, two_step())
    result = nurture("enrollments", "settle", *args)
    assert result.exit_code == 1 and f"error: {said}" in result.stderr


def test_an_enrollment_a_daemon_picked_up_meanwhile_is_left_alone(
    nurture, store, project, monkeypatch
):
    apply(store, project, two_step())
    sent_at = recently()
    resumed, claimed, *rest = (enroll(store, "Welcome", now=sent_at) for _ in range(4))
    crash_mid_send(store, [resumed, claimed, *rest], sent_at)
    channel = MemoryChannel()

    def meanwhile(question: str, **_options) -> bool:
        """While the user reads the plan, a colleague resumes two; a daemon runs one, claims one."""
        assert question == "Settle 4 sends as sent?"
        assert nurture("enrollments", "resume", str(resumed)).exit_code == 0
        drain(store, datetime.now(UTC), channel)
        assert nurture("enrollments", "resume", str(claimed)).exit_code == 0
        with store.begin(immediate=True) as connection:
            now = datetime.now(UTC)
            queries.claim(connection, now, now + timedelta(minutes=5), "daemon-2", 10)
        return True

    monkeypatch.setattr(enrollments_cli, "_terminal", lambda: True)
    monkeypatch.setattr(enrollments_cli.typer, "confirm", meanwhile)
    result = nurture("enrollments", "settle", "--as", "sent")
    assert result.exit_code == 0, result.output
    assert "settled 2 sends as sent (2 active)" in result.stderr.splitlines()
    assert "left alone: 2 enrollments no longer waiting" in result.stderr

    assert [m.key for m in channel.sent] == [f"{resumed}:hello:2"]
    assert enrollment(store, resumed).step_id == "later"
    assert log(store, resumed) == [
        ("hello", 1, "unknown"),
        ("@control", 1, "resumed"),
        ("hello", 2, "sent"),
    ]
    running = enrollment(store, claimed)
    assert (running.status, running.lease_owner, running.step_id) == (
        "running",
        "daemon-2",
        "hello",
    )
    assert "settled" not in (executions(store, claimed)[0].detail or {})
    assert {enrollment(store, i).step_id for i in rest} == {"later"}


def test_a_plan_whose_sends_were_all_decided_meanwhile_settles_none(nurture, store, project):
    apply(store, project, two_step())
    sent_at = recently()
    ids = [enroll(store, "Welcome", now=sent_at) for _ in range(2)]
    crash_mid_send(store, ids, sent_at)
    with store.session() as session:
        planned = settle.plan(session, "resend", settle.Filters())
    assert nurture("enrollments", "settle", "--as", "stop", "--yes").exit_code == 0
    with store.session(immediate=True) as session:
        outcome = settle.settle(session, planned, datetime.now(UTC), "test", "UTC")
    assert outcome.to_dict() == {"as": "resend", "settled": 0, "gone": 2, "statuses": {}}
    assert {enrollment(store, i).status for i in ids} == {"stopped"}


def test_thousands_of_sends_settle_in_one_go(store, project, capsys):
    apply(store, project, two_step())
    sent_at = recently()
    enroll_many(store, 3000, sent_at, "welcome")
    with store.begin() as connection:
        ids = list(connection.execute(select(Enrollment.id)).scalars())
    crash_mid_send(store, ids, sent_at)
    started = time.process_time()
    with store.session(immediate=True) as session:
        planned = settle.plan(session, "sent", settle.Filters())
        outcome = settle.settle(session, planned, datetime.now(UTC), "test", "UTC")
    took = time.process_time() - started
    with capsys.disabled():
        print(
            f"\nsettled {outcome.settled} sends as sent in {took:.2f}s ({store.url.split(':')[0]})"
        )
    assert outcome.to_dict() == {
        "as": "sent",
        "settled": 3000,
        "gone": 0,
        "statuses": {"active": 3000},
    }
    assert took < 20
    with store.begin() as connection:
        where = (Enrollment.step_id == "later") & (
            Enrollment.next_run_at == sent_at + timedelta(days=1)
        )
        assert connection.execute(select(func.count()).where(where)).scalar_one() == 3000
        controls = select(func.count()).where(Execution.status == "settled")
        assert connection.execute(controls).scalar_one() == 3000


def test_resume_still_takes_an_unknown_enrollment_back_one_at_a_time(nurture, store, project):
    apply(store, project, two_step())
    sent_at = recently()
    enrollment_id = enroll(store, "Welcome", now=sent_at)
    crash_mid_send(store, [enrollment_id], sent_at)
    assert nurture("enrollments", "resume", str(enrollment_id)).exit_code == 0
    assert enrollment(store, enrollment_id).status == "active"
    set_enrollment(store, enrollment_id, next_run_at=sent_at)
    assert nurture("enrollments", "settle", "--as", "sent").stderr.startswith("nothing to settle")


def test_a_send_a_killed_daemon_left_unclear_settled_as_sent_goes_on_with_the_next_step(
    store: Store, project, store_url: str, nurture
):
    twilio = FakeTwilio()
    twilio.hold, twilio.lookups = threading.Event(), False  # Twilio cannot tell: a human decides
    with twilio.serving() as api:
        (project / "nurture.toml").write_text(
            f'[twilio]\naccount_sid = "{ACCOUNT_SID}"\nsms_from = "+15550001111"\napi_url = "{api}"\n'
        )
        (project / ".env").write_text(f"NURTURE_TWILIO__AUTH_TOKEN={AUTH_TOKEN}\n")
        apply(store, project, sequence("Texts", step("Hello"), step("Again")))
        enrollment_id = enroll(store, "Texts", now=datetime.now(UTC))
        first = daemon(project, store_url)
        assert twilio.received.wait(60), "the daemon never sent"
        first.send_signal(signal.SIGKILL)  # Twilio has the message; the daemon never heard back
        first.communicate(timeout=30)
        twilio.hold.set()
        second = daemon(project, store_url)
        try:
            wait_until(lambda: enrollment(store, enrollment_id).status == "unknown")
            settled = nurture("enrollments", "settle", "--as", "sent", "--yes")
            assert settled.stderr.splitlines()[-1] == "settled 1 send as sent (1 active)"
            wait_until(lambda: enrollment(store, enrollment_id).status == "completed", 120)
        finally:
            second.send_signal(signal.SIGTERM)
            second.communicate(timeout=30)
    assert [message["Body"] for message in twilio.sent()] == ["Hi Sam, Hello", "Hi Sam, Again"]
    assert [(e.step_id, e.status) for e in executions(store, enrollment_id)] == [
        ("hello", "sent"),
        ("@control", "settled"),
        ("again", "sent"),
    ]


def test_a_decision_committed_while_settling_waits_wins(store, project):
    apply(store, project, two_step())
    sent_at = recently()
    ids = [enroll(store, "Welcome", now=sent_at) for _ in range(3)]
    crash_mid_send(store, ids, sent_at)
    with store.session() as session:
        planned = settle.plan(session, "sent", settle.Filters())
    outcomes = []

    def settle_all() -> None:
        with store.session(immediate=True) as session:
            outcomes.append(settle.settle(session, planned, datetime.now(UTC), "test", "UTC"))

    worker = threading.Thread(target=settle_all)
    with store.begin(immediate=True) as colleague:  # a resume, committed while settle waits
        table = Enrollment.__table__
        resume = table.update().where(table.c.id == ids[0]).values(status="active")
        colleague.execute(resume)
        worker.start()
        time.sleep(0.5)
        assert worker.is_alive(), "settle did not wait for the row"
    worker.join(timeout=30)
    assert outcomes[0].to_dict() == {
        "as": "sent",
        "settled": 2,
        "gone": 1,
        "statuses": {"active": 2},
    }
    assert (enrollment(store, ids[0]).status, enrollment(store, ids[0]).step_id) == (
        "active",
        "hello",
    )
    assert {enrollment(store, i).step_id for i in ids[1:]} == {"later"}
