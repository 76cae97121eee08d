"""Per-channel rate limits: sends spaced 1/rate apart across senders; a Retry-After pauses the
channel for every daemon, whether [rate_limits] names it or not."""

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from builders import sequence, step, write
from enrolling import T0, apply, enroll, executions
from sqlalchemy import select
from test_daemon import sent_counts, start, stop, wait_until

from nurture.channels import (
    LONGEST_RETRY_AFTER,
    OutgoingMessage,
    SendResult,
    TemporaryFailure,
    channels_for,
    is_transactional,
)
from nurture.channels.config import Providers
from nurture.channels.memory import MemoryChannel
from nurture.channels.ratelimit import (
    LONGEST_PAUSE,
    PAUSE_CHECK,
    PauseOnly,
    RateLimited,
    RateLimiter,
    SharedRateLimiter,
    batch_within,
)
from nurture.engine.dispatch import EngineConfig, run_due
from nurture.errors import StoreError
from nurture.store import slots
from nurture.store.db import open_store
from nurture.store.tables import ChannelSlot, Execution
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
    assert run_due(store, T0, EngineConfig(worker="w", in_flight=4), channels) == 6
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


# Shared by every daemon on the store: each send reserves its slot in the `channel_slot` table.

SMS = OutgoingMessage(channel="sms", recipient="+1", body="hi", key="1:a:1")


def daemons(count: int, work: Callable[[int], None]) -> None:
    """Run `work(n)` for n in range(count) in threads, as daemons would run side by side."""
    failures: list[BaseException] = []

    def run_one(n: int) -> None:
        try:
            work(n)
        except BaseException as problem:  # reported below, in the test's thread
            failures.append(problem)

    threads = [threading.Thread(target=run_one, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_daemons_on_one_store_reserve_slots_a_rate_apart(store_url: str):
    reserved: list[list[slots.Slot]] = [[], []]

    def reserve_twenty(n: int) -> None:
        with open_store(store_url) as store:  # an engine of its own, as another daemon has
            reserved[n] += [slots.reserve(store, "sms", 0.1) for _ in range(20)]

    daemons(2, reserve_twenty)
    times = sorted(slot.at for slot in reserved[0] + reserved[1])
    assert all(later - earlier >= 0.1 - 1e-4 for earlier, later in pairwise(times))
    assert times[-1] - times[0] >= 3.9 - 1e-4  # 40 sends at 10 a second, whoever sends them


def test_two_daemons_sending_at_once_keep_to_one_rate_together(store_url: str):
    rate, each = 40.0, 10
    sent_at: list[float] = []

    def stamp(message: OutgoingMessage) -> None:
        sent_at.append(time.time())

    def send_ten(_n: int) -> None:
        with open_store(store_url) as store:
            channel = RateLimited(
                MemoryChannel(behaviour=stamp), SharedRateLimiter(store, "sms", rate)
            )
            for _ in range(each):
                channel.send(SMS)

    started = time.time()
    daemons(2, send_ten)
    # No send before its slot (load only makes them later): the i-th goes i/rate or more after
    # the start, so the 20 take (20 - 1)/rate at least. 5 ms for the store's clock (SQLite's
    # counts milliseconds).
    assert len(sent_at) == 2 * each
    for i, at in enumerate(sorted(sent_at)):
        assert at - started >= i / rate - 0.005, (i, at - started)


def test_retry_after_from_one_daemon_pauses_the_channel_for_every_daemon(store_url: str):
    def busy(message: OutgoingMessage) -> None:
        raise TemporaryFailure("Twilio 20429: Too Many Requests", retry_after=7)

    with open_store(store_url) as first, open_store(store_url) as second:
        told = RateLimited(MemoryChannel(behaviour=busy), SharedRateLimiter(first, "sms", 10.0))
        with pytest.raises(TemporaryFailure):
            told.send(SMS)
        waits: list[float] = []
        other = SharedRateLimiter(second, "sms", 10.0, sleep=waits.append)
        other.wait()
        assert 6.0 < waits[0] <= 7.0  # not 0.1 s: the provider's pause, on the other daemon too
        SharedRateLimiter(second, "email", 10.0, sleep=waits.append).wait()
        assert len(waits) == 1  # email was not paused

        SharedRateLimiter(first, "sms", 10.0).pause(3600)
        other.wait()
        assert waits[1] <= LONGEST_PAUSE  # a longer pause is the retry's, not the channel's


def test_run_reserves_the_sends_of_a_limited_channel_in_the_store(store, project):
    apply(store, project, sequence("Texts", step("Hello")))
    for i in range(3):
        enroll(store, "Texts", email=f"lead{i}@example.com")
    providers = Providers(rate_limits={"sms": 1000})
    channels = channels_for("outbox", store, providers)
    assert isinstance(channels["sms"].limiter, SharedRateLimiter)
    assert not hasattr(channels["email"], "limiter")  # no rate, no limiter
    assert isinstance(channels_for("outbox", providers=providers)["sms"].limiter, RateLimiter)
    assert run_due(store, T0, EngineConfig(worker="w"), channels) == 3
    with store.begin() as connection:
        [row] = connection.execute(select(ChannelSlot.channel, ChannelSlot.next_slot_at)).all()
    assert row.channel == "sms" and row.next_slot_at > time.time() - 60


def test_two_daemons_on_one_store_send_a_burst_at_the_shared_rate(project, run_store, store):
    write(project, "texts.yaml", sequence("Texts", step("Hello")))
    assert run_store("apply", "--yes").exit_code == 0
    (project / "nurture.toml").write_text('timezone = "UTC"\n[rate_limits]\nsms = 10\n')
    pair = [start(project, store.url, "--batch", "5") for _ in range(2)]
    try:
        wait_until(lambda: len(json.loads(run_store("status", "--json").stdout)["workers"]) == 2)
        enroll_many(store, 40, datetime.now(UTC) - timedelta(minutes=1))
        wait_until(lambda: sum(sent_counts(store).values()) == 40)
    finally:
        logs = [stop(daemon) for daemon in pair]
    executed = [json.loads(line)["executed"] for out, err in logs for line in (out + err).splitlines()
                if line.startswith("{") and json.loads(line)["event"] == "stopped"]  # fmt: skip
    assert sum(executed) == 40 and all(n > 0 for n in executed), executed
    with store.begin() as connection:
        started = connection.execute(select(Execution.started_at)).scalars().all()
    # Each daemon alone would send its 20 at 10 a second (4 batches, 1.5 s apart); together
    # they send 40 at 10 a second: the last batch is claimed after 40 - 2 * 5 sends at least.
    assert max(started) - min(started) >= timedelta(seconds=2.5)


# A channel [rate_limits] does not name still pauses for a provider's Retry-After.


def test_retry_after_pauses_a_channel_without_a_rate_for_every_daemon(store_url: str):
    def busy(message: OutgoingMessage) -> None:
        raise TemporaryFailure("Twilio 20429: Too Many Requests", retry_after=7)

    memory = MemoryChannel(behaviour=busy)
    with open_store(store_url) as first, open_store(store_url) as second:
        told = channels_for("memory", first)  # no [rate_limits] at all
        told["sms"].channel = memory
        with pytest.raises(TemporaryFailure):
            told["sms"].send(SMS)
        waits: list[float] = []
        other = PauseOnly(second, "sms", sleep=waits.append)
        other.wait()
        assert 6.0 < waits[0] <= 7.0  # the other daemon waits out the provider's pause too
        PauseOnly(second, "email", sleep=waits.append).wait()
        assert len(waits) == 1  # email was not paused


def test_a_channel_without_a_rate_is_not_spaced_and_reads_the_pause_once_a_second(store):
    clock, waits = Clock(), []
    limiter = PauseOnly(store, "sms", clock=lambda: clock.now, sleep=waits.append)
    assert [limiter.wait() for _ in range(5)] == [0.0] * 5  # no rate: no spacing
    slots.pause(store, "sms", 30)  # another daemon got a 429
    assert limiter.wait() == 0.0  # read a moment ago: this daemon learns of it within a second
    clock.now += PAUSE_CHECK
    assert 28 < limiter.wait() <= 30 and len(waits) == 1


def test_retry_after_pauses_a_channel_without_a_rate_in_a_single_process():
    clock = Clock()
    limiter = PauseOnly(None, "sms", clock=lambda: clock.now, sleep=clock.sleep)
    limiter.pause(5)
    limiter.wait()
    limiter.pause(3600)
    limiter.wait()
    assert clock.waits == [5.0, LONGEST_PAUSE]


def test_the_outbox_is_not_wrapped_for_pauses_it_never_gets():
    channels = channels_for("outbox")
    assert not hasattr(channels["email"], "limiter") and is_transactional(channels["email"])
    assert isinstance(channels_for("memory")["email"].limiter, PauseOnly)


def test_a_limited_channel_offers_the_settle_of_the_channel_it_wraps():
    class Settling(MemoryChannel):
        def settle(self, message, sent_after):
            return SendResult("SM1")

    limited = RateLimited(Settling(), RateLimiter(1.0))
    assert limited.settle(SMS, datetime.now(UTC)) == SendResult("SM1")
    assert not hasattr(RateLimited(MemoryChannel(), RateLimiter(1.0)), "settle")


def test_a_rate_limit_the_store_cannot_give_is_a_retry_not_an_unclear_send():
    class BrokenLimiter:
        def wait(self) -> float:
            raise StoreError("the store is unavailable")

    sent = MemoryChannel()
    with pytest.raises(TemporaryFailure, match="the rate limit could not be read"):
        RateLimited(sent, BrokenLimiter()).send(SMS)
    assert sent.sent == []  # nothing went out, so the engine may send it again


@pytest.mark.parametrize("asked", [float("inf"), 1e20, 7200.0])
def test_a_retry_after_beyond_an_hour_waits_an_hour(asked: float):
    assert TemporaryFailure("busy", retry_after=asked).retry_after == LONGEST_RETRY_AFTER == 3600
    assert TemporaryFailure("busy", retry_after=float("nan")).retry_after is None
