"""The engine's delivery guarantees: leases that hold while a slow batch works, and sends whose
fate is unclear settled or held, never repeated blindly (DESIGN.md §4, crash safety)."""

import logging
import signal
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from builders import sequence, step
from enrolling import T0, apply, drain, enroll, enrollment, executions, log, set_enrollment
from sqlalchemy import insert, select
from sqlalchemy.exc import OperationalError

from nurture.channels import SendResult, TemporaryFailure, UncertainSend
from nurture.channels.memory import MemoryChannel
from nurture.engine import dispatch
from nurture.engine.daemon import Daemon, DaemonOptions
from nurture.engine.dispatch import EngineConfig, Report, run_due, settle_unknown
from nurture.store import queries
from nurture.store.db import Store, open_store
from nurture.store.tables import Enrollment, Execution
from nurture.testing import enroll_many

KINDS = ("whatsapp", "sms", "email", "notification")


def statuses(store: Store) -> Counter:
    with store.begin() as connection:
        return Counter(connection.execute(select(Enrollment.status)).scalars())


def sends_per_step(channel: MemoryChannel) -> Counter:
    """(enrollment, step) -> how many times the channel sent it (the key is enrollment:step:attempt)."""
    return Counter(tuple(message.key.split(":")[:2]) for message in channel.sent)


def run_daemon(store: Store, channel, until, options: DaemonOptions, timeout: float = 60) -> list:
    """Run a real Daemon in this process until `until()` holds (or `timeout`); its log lines."""
    lines: list[str] = []
    channels = dict.fromkeys(KINDS, channel)
    daemon = Daemon(store, channels, options, lambda: datetime.now(UTC), lines.append)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def watch() -> None:
        deadline = threading.Event()
        for _ in range(int(timeout * 10)):
            if until() or deadline.wait(0.1) or daemon.stopping.is_set():
                break
        daemon.stopping.set()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        daemon.run()
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    watcher.join()
    return lines


def test_a_batch_that_outlives_its_lease_sends_every_message_once_and_never_stalls(
    store: Store, project, caplog: pytest.LogCaptureFixture
):
    """Issue 11, point 1: a 1 s lease, a provider answering in 0.15 s, 60 messages on 4 senders (2.25 s)."""
    apply(store, project, sequence("Texts", step("Hello"), step("Again")))
    enroll_many(store, 60, datetime.now(UTC) - timedelta(minutes=1))
    channel = MemoryChannel(delay=0.15)
    options = DaemonOptions(
        EngineConfig(batch=60, in_flight=4, lease=timedelta(seconds=1)), poll=0.1
    )
    with caplog.at_level(logging.ERROR):
        lines = run_daemon(store, channel, lambda: statuses(store) == {"completed": 60}, options)
    assert statuses(store) == {"completed": 60}, f"enrollments stalled: {lines}"
    assert sorted(sends_per_step(channel).values()) == [1] * 120, "a message was sent twice"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    with store.begin() as connection:
        logged = Counter(connection.execute(select(Execution.status)).scalars())
    assert logged == {"sent": 120}


class Settling(MemoryChannel):
    """A channel whose provider can be asked about a message: `found` answers each settle."""

    def __init__(self, found, **options) -> None:
        super().__init__(**options)
        self.found, self.asked = found, []

    def settle(self, message, sent_after):
        self.asked.append((message.key, sent_after))
        return self.found(message)


def uncertain(message):
    raise UncertainSend("read timed out after the request was written")


def test_a_completion_that_lost_its_lease_counts_it_and_the_next_claim_never_resends(
    store: Store, project
):
    apply(store, project, sequence("Texts", step("Hello"), step("Again", delay_days=1)))
    enrollment_id = enroll(store, "Texts")

    def rescued_meanwhile(message):  # a stall past the lease: another daemon's rescue
        set_enrollment(store, enrollment_id, status="active", lease_owner=None)

    report = Report()
    channel = MemoryChannel(behaviour=rescued_meanwhile)
    assert run_due(store, T0, EngineConfig(worker="slow"), channels(channel), report) == 1
    assert report.lost == 1
    assert log(store, enrollment_id) == [("hello", 1, "sent")]  # the send is recorded all the same
    later = MemoryChannel()
    assert drain(store, T0, later) == 1
    assert later.sent == [], "the message was sent again"
    moved = enrollment(store, enrollment_id)
    assert (moved.status, moved.step_id) == ("active", "again")
    assert log(store, enrollment_id) == [("hello", 1, "sent")]


def test_a_daemon_whose_claim_was_taken_over_before_its_send_was_recorded_never_sends_it(
    store: Store, project
):
    apply(store, project, sequence("Texts", step("Hello"), step("Again", delay_days=1)))
    enrollment_id = enroll(store, "Texts")
    reads: list[datetime] = []

    def clock() -> datetime:  # read by the claim, then by the write that records the send
        reads.append(T0)
        if len(reads) == 2:  # meanwhile its lease expired and another daemon claimed it
            set_enrollment(store, enrollment_id, lease_owner="other")
        return T0

    report, channel = Report(), MemoryChannel()
    config = EngineConfig(worker="slow", in_flight=1)
    assert dispatch.drain(store, clock, config, channels(channel), report) == 1
    assert channel.sent == [] and report.lost == 1
    assert log(store, enrollment_id) == []  # no `sending` record: the other daemon sends it
    row = enrollment(store, enrollment_id)
    assert (row.status, row.lease_owner, row.step_id) == ("running", "other", "hello")


def test_a_completion_of_a_claim_taken_over_writes_nothing_of_that_enrollment(store, project):
    apply(store, project, sequence("Texts", step("Hello")))
    mine, taken = enroll(store, "Texts"), enroll(store, "Texts")
    with store.begin(immediate=True) as connection:
        queries.claim(connection, T0, T0 + timedelta(minutes=5), "slow", 10)
    set_enrollment(store, taken, lease_owner="other")
    states = [
        {"_id": i, "status": "completed", "lease_owner": None, "finished_at": T0}
        for i in (mine, taken)
    ]
    with store.begin(immediate=True) as connection:
        assert queries.update_enrollments(connection, states, "slow") == {mine}
    assert (enrollment(store, mine).status, enrollment(store, mine).lease_owner) == (
        "completed",
        None,
    )
    assert (enrollment(store, taken).status, enrollment(store, taken).lease_owner) == (
        "running",
        "other",
    )


def test_a_send_recorded_on_postgres_holds_its_lease_until_the_commit(postgres_url, project):
    """One statement records the sends and locks their enrollments: a rescue waits for it."""
    with open_store(postgres_url) as store:
        apply(store, project, sequence("Texts", step("Hello")))
        enrollment_id = enroll(store, "Texts")
        with store.begin(immediate=True) as connection:
            [claimed] = queries.claim(connection, T0, T0 + timedelta(minutes=5), "w", 10)
        row = {"enrollment_id": enrollment_id, "lead_id": claimed.lead_id, "version": 1}
        row |= {"sequence_id": claimed.sequence_id, "step_id": "hello", "action_type": "sms"}
        row |= {"attempt": 1, "status": "sending", "due_at": T0, "started_at": T0}
        with store.begin() as recording:
            recorded = queries.record_sending(recording, [row], "w")
            assert list(recorded) == [enrollment_id]
            with store.begin() as rescuing:
                rescuing.exec_driver_sql("SET LOCAL lock_timeout = '200ms'")
                with pytest.raises(OperationalError, match="lock timeout"):
                    queries.rescue(rescuing, T0 + timedelta(hours=1))
        with store.begin() as rescuing:  # committed: the rescue goes on, and finds the record
            assert queries.rescue(rescuing, T0 + timedelta(hours=1)) == 1
        with store.begin() as connection:
            assert queries.record_sending(connection, [row | {"attempt": 2}], "w") == {}
        assert log(store, enrollment_id) == [("hello", 1, "sending")]


@pytest.mark.parametrize(
    "failure", [uncertain, lambda message: 1 / 0], ids=["uncertain", "unexpected error"]
)
def test_a_send_that_may_have_reached_the_provider_is_held_never_retried(
    store: Store, project, failure
):
    apply(store, project, sequence("Texts", step("Hello"), step("Again")))
    enrollment_id = enroll(store, "Texts")
    channel = MemoryChannel(behaviour=failure)
    drain(store, T0, channel)
    drain(store, T0 + timedelta(days=1), channel)
    assert len(channel.attempts) == 1, "an uncertain send was retried"
    assert log(store, enrollment_id) == [("hello", 1, "unknown")]
    held = enrollment(store, enrollment_id)
    assert held.status == "unknown" and held.exit_reason.startswith("a send may have happened")
    assert "nurture enrollments settle" in held.exit_reason


def test_an_uncertain_send_the_provider_has_is_recorded_sent_and_the_lead_moves_on(
    store: Store, project
):
    apply(store, project, sequence("Texts", step("Hello"), step("Again", delay_days=1)))
    enrollment_id = enroll(store, "Texts")
    channel = Settling(lambda message: SendResult("SM-found"), behaviour=uncertain)
    report = Report()
    run_due(store, T0, EngineConfig(worker="w"), channels(channel), report)
    assert (report.settled, report.held) == (1, 0)
    assert channel.asked == [(f"{enrollment_id}:hello:1", T0)]
    [execution] = executions(store, enrollment_id)
    assert (execution.status, execution.provider_id) == ("sent", "SM-found")
    assert execution.detail["settled"] == "found at the provider by a lookup"
    assert enrollment(store, enrollment_id).step_id == "again"


def test_an_uncertain_send_the_provider_does_not_have_is_sent_again_as_a_new_attempt(
    store: Store, project
):
    apply(store, project, sequence("Texts", step("Hello")))
    enrollment_id = enroll(store, "Texts")
    fails = iter([uncertain])
    channel = Settling(lambda message: None, behaviour=lambda m: next(fails, print)(m))
    drain(store, T0, channel)
    assert log(store, enrollment_id) == [("hello", 1, "retry")]
    assert executions(store, enrollment_id)[0].error.startswith("the provider has no such message")
    drain(store, T0 + timedelta(hours=1), channel)
    assert log(store, enrollment_id) == [("hello", 1, "retry"), ("hello", 2, "sent")]
    assert [message.key for message in channel.sent] == [f"{enrollment_id}:hello:2"]
    assert enrollment(store, enrollment_id).status == "completed"


def test_a_crashed_send_is_settled_by_asking_the_provider_instead_of_waiting_for_a_human(
    store: Store, project
):
    apply(store, project, sequence("Texts", step("Hello"), step("Again", delay_days=1)))
    enrollment_id = enroll(store, "Texts")
    crash_while_sending(store, enrollment_id, started=T0)
    channel = Settling(lambda message: SendResult("SM-1"))
    assert drain(store, T0 + timedelta(minutes=6), channel) == 1
    assert channel.attempts == [] and channel.asked == [(f"{enrollment_id}:hello:1", T0)]
    assert [(e.status, e.provider_id) for e in executions(store, enrollment_id)] == [
        ("sent", "SM-1")
    ]
    assert enrollment(store, enrollment_id).step_id == "again"


def test_unknown_sends_are_settled_later_once_the_provider_can_tell(store: Store, project):
    apply(store, project, sequence("Texts", step("Hello"), step("Again", delay_days=1)))
    ids = [enroll(store, "Texts", name=f"Lead{n} Smith") for n in range(3)]
    answers = {"now": None}

    def lookup(message):
        if answers["now"] is None:
            raise TemporaryFailure("the provider's lookup is down")
        return answers["now"]

    channel = Settling(lookup, behaviour=uncertain)
    report = Report()
    run_due(store, T0, EngineConfig(worker="w"), channels(channel), report)
    assert report.held == 3 and statuses(store) == {"unknown": 3}
    settle = (EngineConfig(worker="w"), channels(channel))
    assert settle_unknown(store, T0, *settle, before=T0) == 0  # asked at T0 already
    answers["now"] = SendResult("SM-late")
    report = Report()
    later = T0 + timedelta(minutes=2)
    assert settle_unknown(store, later, *settle, before=later, report=report) == 3
    assert report.settled == 3 and len(channel.attempts) == 3
    assert {enrollment(store, i).step_id for i in ids} == {"again"}
    assert {e.status for i in ids for e in executions(store, i)} == {"sent"}


def test_run_once_moves_on_an_unknown_send_the_log_shows_sent_and_holds_the_others(
    store: Store, project, run_store
):
    apply(store, project, sequence("Texts", step("Hello"), step("Again", delay_days=1)))
    recorded, unclear = enroll(store, "Texts"), enroll(store, "Texts")
    crash_while_sending(store, recorded, started=T0, status="sent", provider_id="SM-1")
    crash_while_sending(store, unclear, started=T0, status="unknown")
    for enrollment_id in (recorded, unclear):  # a daemon whose lease was rescued, then lost
        set_enrollment(store, enrollment_id, status="unknown", attempts=1, updated_at=T0)
    result = run_store("run", "--once", "--now", "2025-03-03T09:10:00Z")
    assert result.exit_code == 0, result.stderr
    assert "1 uncertain send settled" in result.stderr
    assert (enrollment(store, recorded).status, enrollment(store, recorded).step_id) == (
        "active",
        "again",
    )
    assert enrollment(store, unclear).status == "unknown"  # the outbox cannot ask a provider
    assert log(store, recorded) == [("hello", 1, "sent")]


def crash_while_sending(store: Store, enrollment_id: int, started, **recorded) -> None:
    """A `sending` execution for the enrollment's first step, as a daemon killed mid-send leaves
    (or what else `recorded` says)."""
    row = enrollment(store, enrollment_id)
    crashed = {
        "enrollment_id": enrollment_id,
        "lead_id": row.lead_id,
        "sequence_id": row.sequence_id,
        "version": row.version,
        "step_id": row.step_id,
        "action_type": "send_sms",
        "attempt": 1,
        "status": "sending",
        "due_at": row.next_run_at,
        "started_at": started,
    }
    with store.begin(immediate=True) as connection:
        connection.execute(insert(Execution.__table__).values(**(crashed | recorded)))


def channels(channel) -> dict:
    return dict.fromkeys(KINDS, channel)


def test_the_daemon_asks_again_about_held_sends_and_logs_what_it_settled(store: Store, project):
    apply(store, project, sequence("Texts", step("Hello")))
    enroll_many(store, 5, datetime.now(UTC) - timedelta(minutes=1))
    lookups = iter([TemporaryFailure("lookup down")] * 5)

    def lookup(message):
        answer = next(lookups, SendResult("SM-later"))
        if isinstance(answer, Exception):
            raise answer
        return answer

    channel = Settling(lookup, behaviour=uncertain)
    options = DaemonOptions(EngineConfig(lease=timedelta(seconds=5)), poll=0.1, settle=0.5)
    lines = run_daemon(store, channel, lambda: statuses(store) == {"completed": 5}, options)
    assert statuses(store) == {"completed": 5}
    assert len(channel.attempts) == 5 and len(channel.asked) == 10  # each sent once, asked twice
    events = [line.split(" ")[1:] for line in lines]
    assert ["held", "sends=5"] in events and ["settled", "sends=5"] in events
