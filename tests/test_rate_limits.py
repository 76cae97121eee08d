"""Per-channel rate limits: sends spaced 1/rate apart across senders, Retry-After pauses all."""

import pytest
from builders import sequence, step
from enrolling import T0, apply, enroll, executions

from nurture.channels import OutgoingMessage, TemporaryFailure
from nurture.channels.memory import MemoryChannel
from nurture.channels.ratelimit import RateLimited, RateLimiter, batch_within
from nurture.dispatch import run_due


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


def test_a_batch_fits_its_lease_at_the_slowest_rate():
    assert batch_within(500, {}, 300) == 500
    assert batch_within(500, {"sms": 1, "email": 20}, 300) == 150
    assert batch_within(500, {"whatsapp": 0.001}, 300) == 1
