"""`nurture run --once`, `nurture enrollments ...`, tasks, appointments and notifications, on both stores."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from builders import sequence, step, write
from enrolling import apply, enroll, enrollment, executions
from sqlalchemy import select

from nurture.store.tables import Execution


@pytest.fixture
def nurture(run_store, project):
    return run_store


def test_run_once_prints_each_message_through_the_console(nurture, store, project):
    apply(store, project, sequence("Welcome", step("Hello"), step("Later", delay_days=1)))
    enroll(store, "Welcome", name="Ana Silva")
    result = nurture("run", "--once", "--channel", "console", "--now", "2025-03-03T09:00:00Z")
    assert result.exit_code == 0, result.output
    assert result.stdout == "[sms] to +15555550100\n    Hi Ana, Hello\n"
    assert "1 step run at 2025-03-03 09:00 UTC" in result.stderr
    later = nurture("run", "--once", "--channel", "console", "--now", "2025-03-04T09:00:00")
    assert "Hi Ana, Later" in later.stdout


def test_pause_resume_and_stop_are_logged(nurture, store, project):
    apply(store, project, sequence("Welcome", step("Hello", delay_days=1)))
    enrollment_id = enroll(store, "Welcome")
    assert nurture("enrollments", "pause", str(enrollment_id)).stderr.startswith(
        f"enrollment {enrollment_id}: paused"
    )
    assert nurture("run", "--once", "--now", "2025-03-05T00:00:00Z").stderr.startswith(
        "0 steps run"
    )
    again = nurture("enrollments", "pause", str(enrollment_id))
    assert again.exit_code == 1 and f"enrollment {enrollment_id} is paused" in again.stderr
    assert nurture("enrollments", "resume", str(enrollment_id)).exit_code == 0
    assert nurture("enrollments", "stop", str(enrollment_id)).exit_code == 0
    stopped = enrollment(store, enrollment_id)
    assert stopped.status == "stopped" and stopped.exit_reason == "stopped by hand"
    log = [(e.step_id, e.attempt, e.status) for e in executions(store, enrollment_id)]
    assert log == [
        ("@control", 1, "paused"),
        ("@control", 2, "resumed"),
        ("@control", 3, "stopped"),
    ]
    listed = json.loads(nurture("enrollments", "list", "--status", "stopped", "--json").stdout)
    assert [row["id"] for row in listed] == [enrollment_id]
    assert listed[0]["sequence"] == "Welcome" and listed[0]["lead"] == "Sam Carter"


def test_advance_needs_manual_advance(nurture, store, project):
    apply(
        store, project,
        sequence("Manual", step("Hello", delay_days=3), manual_advance=True),
        sequence("Auto", step("Hello", delay_days=3)),
    )  # fmt: skip
    today = datetime.now(UTC)
    manual, auto = enroll(store, "Manual", now=today), enroll(store, "Auto", now=today)
    refused = nurture("enrollments", "advance", str(auto))
    assert refused.exit_code == 1 and "does not allow manual advance" in refused.stderr
    assert nurture("enrollments", "advance", str(manual)).exit_code == 0
    assert nurture("run", "--once").stderr.startswith("1 step run")
    assert enrollment(store, manual).status == "completed"
    assert enrollment(store, auto).next_run_at == today + timedelta(days=3)


def test_unknown_enrollments_are_listed_and_can_be_resumed(nurture, store, project):
    apply(store, project, sequence("Welcome", step("Hello")))
    enrollment_id = enroll(store, "Welcome")
    nurture("enrollments", "pause", str(enrollment_id))  # a control row, then pretend a crash:
    with store.begin() as connection:
        row = connection.execute(select(Execution.__table__)).one()._mapping
        crashed = {k: v for k, v in row.items() if k != "id"} | {"step_id": "hello", "attempt": 1}
        crashed |= {"action_type": "send_sms", "status": "sending"}
        connection.execute(Execution.__table__.insert().values(**crashed))
    nurture("enrollments", "resume", str(enrollment_id))
    nurture("run", "--once", "--now", "2025-03-03T09:00:00Z")
    unknown = json.loads(nurture("enrollments", "list", "--status", "unknown", "--json").stdout)
    assert [row["id"] for row in unknown] == [enrollment_id]
    assert nurture("enrollments", "resume", str(enrollment_id)).exit_code == 0
    nurture("run", "--once", "--now", "2025-03-03T09:01:00Z")
    assert enrollment(store, enrollment_id).status == "completed"
    sends = [
        (e.attempt, e.status) for e in executions(store, enrollment_id) if e.step_id == "hello"
    ]
    assert sends == [(1, "unknown"), (2, "sent")]


def test_tasks_appointments_and_notifications_commands(nurture, store, project):
    task, meet = step("Call", "create_task"), step("Meet", "schedule_appointment")
    tell = {
        "name": "Tell",
        "action_type": "send_notification",
        "action_config": {"message": "New lead"},
    }
    apply(store, project, sequence("Effects", task, meet, tell))
    enroll(store, "Effects")
    nurture("run", "--once", "--now", "2025-03-03T09:00:00Z")
    tasks = json.loads(nurture("tasks", "list", "--json").stdout)
    assert [(t["title"], t["lead"]) for t in tasks] == [("Call Sam Carter", "Sam Carter")]
    assert nurture("tasks", "done", str(tasks[0]["id"])).stderr.startswith(
        f"task {tasks[0]['id']} done"
    )
    assert json.loads(nurture("tasks", "list", "--json").stdout) == []
    assert len(json.loads(nurture("tasks", "list", "--all", "--json").stdout)) == 1
    assert "Check-in" in nurture("appointments", "list").stdout
    notes = json.loads(nurture("notifications", "list", "--json").stdout)
    assert [n["message"] for n in notes] == ["New lead"]


@pytest.mark.parametrize(
    ("args", "said"),
    [(("--status", "actve"), "unknown status 'actve' (did you mean 'active'?)"),
     (("--status", "bogus"), "unknown status 'bogus' (one of active, running, paused, unknown,"),
     (("--sequence", "Welcom"), "no sequence 'Welcom' in the store (did you mean 'Welcome'?)")],
)  # fmt: skip
def test_an_unknown_filter_is_an_error_not_an_empty_list(nurture, project, args, said):
    write(project, "welcome.yaml", sequence("Welcome", step("Hi")))
    assert nurture("apply", "--yes").exit_code == 0
    result = nurture("enrollments", "list", *args)
    assert result.exit_code == 1 and f"error: {said}" in result.output
