"""A daemon killed after the provider took a message but before the send was recorded:
the message is never sent again; the next daemon asks Twilio, or holds the step unknown for a
human when Twilio cannot tell. A daemon killed in the middle of a large batch leaves at most
its senders' sends unclear."""

import json
import signal
import subprocess
import sys
import threading
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from builders import sequence, step
from enrolling import apply, enroll, enrollment, executions
from servers import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio, Reply, Request
from sqlalchemy import select
from test_daemon import live, stop, wait_until

from nurture.store.db import Store
from nurture.store.tables import Enrollment, Execution
from nurture.testing import enroll_many


def daemon(project: Path, url: str, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "nurture", "--database-url", url, "run", "--channel", "live",
               "--poll", "0.2", "--lease", "2", "--log-format", "json", *extra]  # fmt: skip
    return subprocess.Popen(
        command, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def configure(project: Path, api: str) -> None:
    """The project's Twilio account: the fake server at `api`."""
    (project / "nurture.toml").write_text(
        f'[twilio]\naccount_sid = "{ACCOUNT_SID}"\nsms_from = "+15550001111"\napi_url = "{api}"\n'
    )
    (project / ".env").write_text(f"NURTURE_TWILIO__AUTH_TOKEN={AUTH_TOKEN}\n")


class SlowTwilio(FakeTwilio):
    """Twilio answering each message `delay` seconds after it took it."""

    delay = 0.2

    def answer(self, request: Request) -> Reply:
        return replace(super().answer(request), delay=self.delay)


def kill_mid_send(project: Path, store_url: str, twilio: FakeTwilio) -> subprocess.Popen:
    """A daemon killed once Twilio took the message, before it answered; a second one started."""
    first = daemon(project, store_url)
    assert twilio.received.wait(60), "the daemon never sent"
    first.send_signal(signal.SIGKILL)  # Twilio has the message; the daemon never heard back
    first.communicate(timeout=30)
    twilio.hold.set()
    return daemon(project, store_url)


def stopped(second: subprocess.Popen) -> str:
    second.send_signal(signal.SIGTERM)
    _, err = second.communicate(timeout=30)
    assert second.returncode == 0, err
    return err


def test_a_send_a_killed_daemon_left_unclear_is_found_at_twilio_and_the_lead_moves_on(
    store: Store, project: Path, store_url: str
):
    twilio = FakeTwilio()
    twilio.hold = threading.Event()
    with twilio.serving() as api:
        configure(project, api)
        apply(store, project, sequence("Texts", step("Hello"), step("Again", delay_days=1)))
        enrollment_id = enroll(store, "Texts", now=datetime.now(UTC))
        second = kill_mid_send(project, store_url, twilio)
        try:
            wait_until(lambda: enrollment(store, enrollment_id).step_id == "again", timeout=60)
        finally:
            log = stopped(second)

    [taken] = twilio.messages
    assert len(twilio.sent()) == 1, "the message was sent twice"
    [execution] = executions(store, enrollment_id)
    assert (execution.status, execution.provider_id) == ("sent", taken["sid"])
    assert execution.detail["settled"] == "found at the provider by a lookup"
    assert enrollment(store, enrollment_id).status == "active"
    assert '"event": "settled", "sends": 1' in log


def test_a_send_twilio_cannot_tell_about_is_held_unknown_never_sent_twice(
    store: Store, project: Path, store_url: str, run
):
    twilio = FakeTwilio()
    twilio.hold, twilio.lookups = threading.Event(), False
    with twilio.serving() as api:
        configure(project, api)
        apply(store, project, sequence("Texts", step("Hello"), step("Again", delay_days=1)))
        enrollment_id = enroll(store, "Texts", now=datetime.now(UTC))
        assert executions(store, enrollment_id) == []
        second = kill_mid_send(project, store_url, twilio)
        try:
            wait_until(lambda: enrollment(store, enrollment_id).status == "unknown", timeout=60)
        finally:
            stopped(second)

    assert len(twilio.sent()) == 1, "the message was sent twice"
    [execution] = executions(store, enrollment_id)
    assert (execution.step_id, execution.status) == ("hello", "unknown")
    stuck = enrollment(store, enrollment_id)
    assert stuck.step_id == "hello" and "a send may have happened" in stuck.exit_reason
    status = json.loads(run("--database-url", store_url, "status", "--json").stdout)
    assert status["enrollments"] == {"unknown": 1}


def test_a_daemon_killed_mid_batch_leaves_at_most_its_senders_unclear_and_sends_the_rest_once(
    store: Store, project: Path, store_url: str
):
    """Issue 11, point 3: 200 messages in one batch on 4 senders, a provider answering in 0.2 s."""
    twilio = SlowTwilio()
    with twilio.serving() as api:
        configure(project, api)
        hello = step("Hello", action_config={"message": "Hi {{ lead.name }}"})
        apply(store, project, sequence("Texts", hello))
        enroll_many(store, 200, datetime.now(UTC) - timedelta(minutes=1))
        first = daemon(project, store_url, "--senders", "4", "--batch", "200")
        wait_until(lambda: len(twilio.sent()) >= 20, timeout=60)
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=30)
        recorded = Counter(execution_statuses(store))
        assert recorded["sending"] <= 4, recorded  # the sends in flight, no more
        assert sum(recorded.values()) < 100  # most of the batch was never attempted: no record

        twilio.delay = 0
        second = daemon(project, store_url, "--senders", "4")
        try:
            wait_until(lambda: live(store) == 0, timeout=120)
        finally:
            stop(second)

    per_lead = Counter(form["Body"] for form in twilio.sent())
    with store.begin() as connection:
        outcomes = Counter(connection.execute(select(Enrollment.status)).scalars())
    print(f"killed mid-batch: {dict(outcomes)}, {len(per_lead)} leads reached")
    assert max(per_lead.values()) == 1, "a lead got the message twice"
    assert set(outcomes) <= {"completed", "unknown"} and outcomes["unknown"] <= 4
    assert len(per_lead) >= 200 - outcomes["unknown"]  # every lead but the unclear got it
    assert Counter(execution_statuses(store))["sent"] == outcomes["completed"]


def execution_statuses(store: Store) -> list[str]:
    with store.begin() as connection:
        return list(connection.execute(select(Execution.status)).scalars())
