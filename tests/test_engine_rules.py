"""The engine's rules (DESIGN.md §4) with an injected clock: windows, conditions, retries,
failure policy, opt-out, conversion, versions, crash recovery; on SQLite and Postgres."""

from datetime import UTC, datetime, timedelta

from builders import sequence, step
from enrolling import T0, apply, drain, enroll, enrollment, executions, log, set_enrollment
from sqlalchemy import insert, select

from nurture.channels import PermanentFailure, TemporaryFailure
from nurture.channels.memory import MemoryChannel
from nurture.engine.dispatch import next_due
from nurture.store.tables import Appointment, Execution, Notification, Task


def failing(error: Exception, body_contains: str = "Hello"):
    def behaviour(message):
        if body_contains in message.body:
            raise error

    return behaviour


def test_a_send_window_moves_a_message_to_the_next_opening(store, project):
    window = {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}
    apply(
        store,
        project,
        sequence("Windowed", step("Hello"), step("Later", delay_hours=1), send_window=window),
    )
    friday = datetime(2025, 3, 7, 16, 30, tzinfo=UTC)
    enrollment_id = enroll(store, "Windowed", now=friday)
    drain(store, friday)
    monday = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)
    assert next_due(store) == monday
    reasons = executions(store, enrollment_id)[0].detail["next"]["reasons"]
    assert reasons[0] == "17:30 is after the send window closes (17:00)"
    assert "outside the send window days" in reasons[1]
    assert drain(store, monday - timedelta(minutes=1)) == 0
    assert drain(store, monday) == 1


def test_a_false_condition_skips_the_step_and_says_why(store, project):
    vip = step("Vip offer", conditions={"tags": ["vip"], "lead_score": {"min": 50}})
    apply(store, project, sequence("Cond", vip, step("After")))
    enrollment_id = enroll(store, "Cond", score=20, tags=["vip"])
    channel = MemoryChannel()
    drain(store, T0, channel)
    skipped, after = executions(store, enrollment_id)
    assert skipped.status == "skipped"
    assert skipped.error == "conditions not met: ✗ lead_score: wants 50-100, lead has 20"
    assert after.step_id == "after" and after.status == "sent"
    assert channel.bodies() == ["Hi Sam, After"]


def test_an_inactive_step_is_skipped(store, project):
    apply(store, project, sequence("Off", step("Hello", active=False), step("After")))
    enrollment_id = enroll(store, "Off")
    drain(store, T0)
    assert log(store, enrollment_id) == [("hello", 1, "skipped"), ("after", 1, "sent")]


def test_a_stop_step_ends_the_sequence_only_when_its_conditions_hold(store, project):
    stop = step("Stop for clients", "wait", conditions={"tags": ["client"]}, stop=True)
    apply(store, project, sequence("Stops", step("Hello"), stop, step("After", delay_days=1)))
    client = enroll(store, "Stops", name="Ana Ruiz", tags=["client"])
    prospect = enroll(store, "Stops", name="Bo Li")
    channel = MemoryChannel()
    drain(store, T0, channel)
    drain(store, T0 + timedelta(days=1), channel)
    assert log(store, client) == [("hello", 1, "sent"), ("stop-for-clients", 1, "done")]
    ended = enrollment(store, client)
    assert (ended.status, ended.exit_reason, ended.next_run_at) == (
        "completed", "step stop-for-clients ends the sequence", None,
    )  # fmt: skip
    assert log(store, prospect) == [
        ("hello", 1, "sent"), ("stop-for-clients", 1, "skipped"), ("after", 1, "sent"),
    ]  # fmt: skip
    assert enrollment(store, prospect).exit_reason == "completed"
    assert channel.bodies() == ["Hi Ana, Hello", "Hi Bo, Hello", "Hi Bo, After"]


def retrying(policy: str):
    return sequence(
        "Flaky", step("Hello"), step("Next"),
        max_retries=2, retry_delay="10m", retry_backoff=3, failure_policy=policy,
    )  # fmt: skip


def test_temporary_failures_retry_with_backoff_then_continue(store, project):
    apply(store, project, retrying("continue"))
    enrollment_id = enroll(store, "Flaky")
    channel = MemoryChannel(behaviour=failing(TemporaryFailure("503 from provider")))
    drain(store, T0, channel)
    assert next_due(store) == T0 + timedelta(minutes=10)
    drain(store, T0 + timedelta(minutes=10), channel)
    assert next_due(store) == T0 + timedelta(minutes=40)  # 10m * 3
    drain(store, T0 + timedelta(minutes=40), channel)
    assert log(store, enrollment_id) == [
        ("hello", 1, "retry"), ("hello", 2, "retry"), ("hello", 3, "failed"), ("next", 1, "sent"),
    ]  # fmt: skip
    last = executions(store, enrollment_id)[2]
    assert last.error == "503 from provider (gave up after 3 attempts)"
    assert enrollment(store, enrollment_id).status == "completed"


def test_exhausted_retries_with_policy_stop_fail_the_enrollment(store, project):
    apply(store, project, retrying("stop"))
    enrollment_id = enroll(store, "Flaky")
    channel = MemoryChannel(behaviour=failing(TemporaryFailure("timeout")))
    for minutes in (0, 10, 40):
        drain(store, T0 + timedelta(minutes=minutes), channel)
    failed = enrollment(store, enrollment_id)
    assert failed.status == "failed"
    assert failed.exit_reason == "step hello failed: timeout (gave up after 3 attempts)"
    assert channel.sent == [] and len(channel.attempts) == 3


def test_a_permanent_failure_is_not_retried(store, project):
    apply(store, project, retrying("continue"))
    enrollment_id = enroll(store, "Flaky")
    channel = MemoryChannel(behaviour=failing(PermanentFailure("invalid number")))
    drain(store, T0, channel)
    assert log(store, enrollment_id) == [("hello", 1, "failed"), ("next", 1, "sent")]
    assert len(channel.attempts) == 2


def test_a_lead_without_an_email_address_fails_at_once(store, project):
    apply(store, project, sequence("Mail", step("Hello", "send_email"), failure_policy="stop"))
    enrollment_id = enroll(store, "Mail", email=None)
    channel = MemoryChannel()
    drain(store, T0, channel)
    assert executions(store, enrollment_id)[0].error == "no email address"
    assert enrollment(store, enrollment_id).status == "failed" and channel.attempts == []


def test_a_template_error_is_a_permanent_failure(store, project):
    broken = step("Hello")
    broken["action_config"]["message"] = "{{ lead.fields.missing }}"
    apply(store, project, sequence("Broken", broken))
    enrollment_id = enroll(store, "Broken")
    drain(store, T0)
    failed = executions(store, enrollment_id)[0]
    assert (
        failed.status == "failed" and "template error" in failed.error and "missing" in failed.error
    )


def test_an_opted_out_lead_is_skipped_never_sent(store, project):
    apply(store, project, sequence("Opt", step("Hello"), step("Mail", "send_email")))
    enrollment_id = enroll(store, "Opt", opted_out=["sms"])
    channel = MemoryChannel()
    drain(store, T0, channel)
    assert log(store, enrollment_id) == [("hello", 1, "skipped"), ("mail", 1, "sent")]
    assert executions(store, enrollment_id)[0].error == "lead opted out of sms"
    assert [m.channel for m in channel.attempts] == ["email"]


def test_conversion_between_steps_stops_the_sequence(store, project):
    apply(store, project, sequence("Conv", step("Hello"), step("Later", delay_days=1)))
    enrollment_id = enroll(store, "Conv")
    drain(store, T0)
    set_enrollment(store, enrollment_id, status="converted", exit_reason="lead converted")
    assert drain(store, T0 + timedelta(days=2)) == 0
    assert log(store, enrollment_id) == [("hello", 1, "sent")]


def test_a_conversion_during_a_send_wins_over_the_completion(store, project):
    apply(store, project, sequence("Conv", step("Hello"), step("Later", delay_days=1)))
    enrollment_id = enroll(store, "Conv")

    def convert(message):
        set_enrollment(store, enrollment_id, status="converted", lease_owner=None)

    drain(store, T0, MemoryChannel(behaviour=convert))
    assert enrollment(store, enrollment_id).status == "converted"
    assert log(store, enrollment_id) == [("hello", 1, "sent")]  # the send happened: it is logged


def test_a_new_version_continues_at_the_same_step_id(store, project):
    v1 = sequence("Versioned", step("Hello"), step("Tip", delay_days=1), step("Bye", delay_days=1))
    apply(store, project, v1)
    enrollment_id = enroll(store, "Versioned")
    channel = MemoryChannel()
    drain(store, T0, channel)
    v2 = sequence("Versioned", step("Intro"), step("Tip", delay_days=1), step("Bye", delay_days=1))
    v2["steps"][1]["action_config"]["message"] = "New tip for {{ lead.first_name }}"
    apply(store, project, v2)
    drain(store, T0 + timedelta(days=1), channel)
    assert channel.bodies() == ["Hi Sam, Hello", "New tip for Sam"]
    moved = enrollment(store, enrollment_id)
    assert moved.version == 2 and moved.step_id == "bye"


def test_a_removed_step_is_skipped_to_the_next_existing_one(store, project):
    v1 = sequence("Versioned", step("Hello"), step("Tip", delay_days=1), step("Bye", delay_hours=3))
    apply(store, project, v1)
    enrollment_id = enroll(store, "Versioned")
    drain(store, T0)
    apply(store, project, sequence("Versioned", step("Hello"), step("Bye", delay_hours=3)))
    drain(store, T0 + timedelta(days=1))
    assert log(store, enrollment_id) == [("hello", 1, "sent"), ("tip", 1, "skipped")]
    assert executions(store, enrollment_id)[1].error == "step removed in version 2"
    assert next_due(store) == T0 + timedelta(days=1, hours=3)
    drain(store, T0 + timedelta(days=1, hours=3))
    assert log(store, enrollment_id)[-1] == ("bye", 1, "sent")


def test_a_send_left_in_sending_by_a_crash_is_never_repeated(store, project):
    apply(store, project, sequence("Crash", step("Hello"), step("Next")))
    enrollment_id = enroll(store, "Crash")
    crashed = {
        "enrollment_id": enrollment_id, "lead_id": 1, "sequence_id": 1, "version": 1,
        "step_id": "hello", "action_type": "send_sms", "attempt": 1, "status": "sending",
        "due_at": T0, "started_at": T0,
    }  # fmt: skip
    with store.begin() as connection:
        crashed["lead_id"] = enrollment(store, enrollment_id).lead_id
        connection.execute(insert(Execution.__table__).values(**crashed))
    channel = MemoryChannel()
    assert drain(store, T0 + timedelta(minutes=6), channel) == 1
    assert channel.attempts == []
    assert log(store, enrollment_id) == [("hello", 1, "unknown")]
    unknown = enrollment(store, enrollment_id)
    assert unknown.status == "unknown" and "a send may have happened" in unknown.exit_reason


def test_tasks_appointments_and_notifications_are_stored(store, project):
    task = {
        "name": "Call",
        "action_type": "create_task",
        "action_config": {"title": "Call {{ lead.name }}", "due_in": "1d", "priority": "high"},
    }
    meeting = {
        "name": "Meet",
        "action_type": "schedule_appointment",
        "action_config": {"title": "Check-in", "after": "2d", "at": "12:30"},
    }
    notify = {"name": "Tell", "action_type": "send_notification",
              "action_config": {"message": "{{ lead.name }} is in"}}  # fmt: skip
    apply(store, project, sequence("Effects", task, meeting, notify))
    enroll(store, "Effects", timezone="America/Toronto")
    channel = MemoryChannel()
    drain(store, T0, channel)
    with store.begin() as connection:
        tasks = connection.execute(select(Task.title, Task.due_at, Task.priority)).all()
        starts = connection.execute(select(Appointment.starts_at)).scalar_one()
        notes = connection.execute(select(Notification.message)).scalars().all()
    assert tasks == [("Call Sam Carter", T0 + timedelta(days=1), "high")]
    assert starts == datetime(2025, 3, 5, 17, 30, tzinfo=UTC)  # 12:30 in Toronto (EST)
    assert notes == ["Sam Carter is in"]
    assert [(m.channel, m.recipient) for m in channel.sent] == [("notification", "kim@example.com")]
