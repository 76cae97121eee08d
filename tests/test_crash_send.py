"""A daemon killed after the provider took a message but before the send was recorded:
the message is never sent again; the step is marked unknown for a human to check."""

import json
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

from builders import sequence, step
from enrolling import apply, enroll, enrollment, executions
from servers import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from test_daemon import wait_until

from nurture.store.db import Store


def daemon(project: Path, url: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "nurture", "--database-url", url, "run", "--channel", "live",
               "--poll", "0.2", "--lease", "2", "--log-format", "json"]  # fmt: skip
    return subprocess.Popen(
        command, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_a_daemon_killed_mid_send_never_sends_the_message_twice(
    store: Store, project: Path, store_url: str, run
):
    twilio = FakeTwilio()
    twilio.hold = threading.Event()
    with twilio.serving() as api:
        (project / "nurture.toml").write_text(
            f'[twilio]\naccount_sid = "{ACCOUNT_SID}"\nsms_from = "+15550001111"\napi_url = "{api}"\n'
        )
        (project / ".env").write_text(f"NURTURE_TWILIO__AUTH_TOKEN={AUTH_TOKEN}\n")
        apply(store, project, sequence("Texts", step("Hello"), step("Again", delay_days=1)))
        enrollment_id = enroll(store, "Texts", now=datetime.now(UTC))

        first = daemon(project, store_url)
        assert twilio.received.wait(60), "the daemon never sent"
        first.send_signal(signal.SIGKILL)  # Twilio has the message; the daemon never heard back
        first.communicate(timeout=30)
        assert executions(store, enrollment_id)[0].status == "sending"

        twilio.hold.set()
        second = daemon(project, store_url)
        try:
            wait_until(lambda: enrollment(store, enrollment_id).status == "unknown", timeout=60)
        finally:
            second.send_signal(signal.SIGTERM)
            out, err = second.communicate(timeout=30)
        assert second.returncode == 0, err

    assert len(twilio.sent()) == 1, "the message was sent twice"
    [execution] = executions(store, enrollment_id)
    assert (execution.step_id, execution.status) == ("hello", "unknown")
    stuck = enrollment(store, enrollment_id)
    assert stuck.step_id == "hello" and "a send may have happened" in stuck.exit_reason
    status = json.loads(run("--database-url", store_url, "status", "--json").stdout)
    assert status["enrollments"] == {"unknown": 1}
