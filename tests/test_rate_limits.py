"""Per-channel rate limits: sends spaced 1/rate apart across senders, Retry-After pauses all."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from builders import sequence, step, write
from enrolling import T0, apply, enroll, executions
from sqlalchemy import select
from test_daemon import sent_counts, start, stop, wait_until

from nurture.channels import OutgoingMessage, TemporaryFailure
from nurture.channels.memory import MemoryChannel
from nurture.channels.ratelimit import RateLimited, RateLimiter, batch_within
from nurture.dispatch import run_due
from nurture.store.tables import Execution
from nurture.testing import enroll_many


class Clock:
    """A clock that stands still; the waits asked of `sleep` are recorded."""

    def __init__(self) -> None:
        self.now, self.waits = 1000.0, []

    def sleep(self, seconds: float) -> None:
        self.waits.append(round(seconds, 6))


def test_a_burst_is_spread_at_the_channel_rate_across_concurrent_senders(store, project):
    apply(store, project, sequence("Texts", step("Hello")))
    ids = [enroll(store, "Texts", email=f"lead{i}@example.com") for i in range(6)]
    clock, memory = Clock(), MemoryChannel()
    sms = RateLimited(memory, RateLimiter(2.0, lambda: clock.now, clock.sleep))
    channels = {"sms": sms, "whatsapp": memory, "email": memory, "notification": memory}
    assert run_due(store, T0, worker="w", channels=channels, senders=4) == 6
    assert sorted(clock.waits) == [0.5, 1.0, 1.5, 2.0, 2.5]  # the first goes at once
    assert len(memory.sent) == 6
    assert all(executions(store, i)[0].status == "sent" for i in ids)


def test_retry_after_pauses_the_whole_channel():
    clock = Clock()
    limiter = RateLimiter(10.0, lambda: clock.now, clock.sleep)

    def busy(message: OutgoingMessage) -> None:
        raise TemporaryFailure("Twilio 20429: Too Many Requests", retry_after=7)

    channel = RateLimited(MemoryChannel(behaviour=busy), limiter)
    message = OutgoingMessage(channel="sms", recipient="+1", body="hi", key="1:a:1")
    with pytest.raises(TemporaryFailure):
        channel.send(message)
    limiter.wait()
    assert clock.waits == [7.0]  # the next message waits for the provider, not just 0.1 s


def test_a_batch_holds_ten_seconds_of_sends_at_the_slowest_rate():
    assert batch_within(500, {}, 300) == 500
    assert batch_within(500, {"sms": 1, "email": 20}, 300) == 10
    assert batch_within(500, {"email": 200}, 300) == 500
    assert batch_within(500, {"sms": 10}, 4) == 20  # and its sends fit in half a lease
    assert batch_within(500, {"whatsapp": 0.001}, 300) == 1


def test_a_daemon_spreads_a_burst_and_status_shows_the_backlog(project, run_store, store):
    write(project, "texts.yaml", sequence("Texts", step("Hello")))
    assert run_store("apply", "--yes").exit_code == 0
    enroll_many(store, 30, datetime.now(UTC) - timedelta(minutes=1))
    (project / "nurture.toml").write_text('timezone = "UTC"\n[rate_limits]\nsms = 10\n')
    daemon = start(project, store.url, "--batch", "5")
    try:
        wait_until(lambda: daemon_seen(run_store))
        status = json.loads(run_store("status", "--json").stdout)
        assert status["due"] > 0 and status["lag_seconds"] >= 60  # the burst waits in the store
        assert status["rate_limits"] == {"sms": 10.0}
        wait_until(lambda: sum(sent_counts(store).values()) == 30)
    finally:
        stop(daemon)
    with store.begin() as connection:
        started = connection.execute(select(Execution.started_at)).scalars().all()
    assert max(started) - min(started) >= timedelta(seconds=2)  # 30 sends at 10 a second


def daemon_seen(run_store) -> bool:
    return bool(json.loads(run_store("status", "--json").stdout)["workers"])
