"""The send pipeline: messages on an event loop, at most `in_flight` at once (and a channel's
`concurrency`), each step completed as its message finishes, the next batch claimed meanwhile."""

import asyncio
import threading

import pytest
from builders import sequence, step
from enrolling import T0, apply, drain, enroll
from sqlalchemy import func, select

from nurture.channels import OutgoingMessage, SendResult, TemporaryFailure
from nurture.channels.memory import MemoryChannel
from nurture.store.tables import Execution


class AsyncProvider:
    """A channel doing its I/O on the loop: `send_async` answers after `latency` seconds.
    Counts the sends in flight; `release` is for subclasses that hold a message."""

    def __init__(self, latency: float = 0.05, concurrency: int | None = None) -> None:
        self.latency, self.concurrency = latency, concurrency
        self.sent: list[OutgoingMessage] = []
        self.threads: set[str] = set()
        self.flying = self.peak = 0
        self.release = threading.Event()

    async def send_async(self, message: OutgoingMessage) -> SendResult:
        self.threads.add(threading.current_thread().name)
        self.flying += 1
        self.peak = max(self.peak, self.flying)
        try:
            await asyncio.sleep(self.latency)
            self.sent.append(message)
            return SendResult(f"async-{len(self.sent)}")
        finally:
            self.flying -= 1

    def send(self, message: OutgoingMessage) -> SendResult:
        raise AssertionError("the engine sends on its event loop")


def texts(store, project, leads: int) -> list[int]:
    apply(store, project, sequence("Texts", step("Hello")))
    return [
        enroll(store, "Texts", name=f"Lead {n}", email=f"lead{n}@example.com") for n in range(leads)
    ]


def statuses(store) -> dict[str, int]:
    query = select(Execution.status, func.count()).group_by(Execution.status)
    with store.begin() as connection:
        return dict(connection.execute(query).all())


def test_a_channel_with_send_async_is_sent_on_the_event_loop(store, project):
    texts(store, project, 120)
    provider = AsyncProvider()
    assert drain(store, T0, provider, in_flight=50, batch=40) == 120
    assert len(provider.sent) == 120 and len({m.key for m in provider.sent}) == 120
    assert provider.threads == {"sends"}  # one loop, no thread per message
    assert 1 < provider.peak <= 50
    assert statuses(store) == {"sent": 120}


def test_a_channel_takes_no_more_than_its_concurrency(store, project):
    texts(store, project, 60)
    provider = AsyncProvider(concurrency=5)
    assert drain(store, T0, provider, in_flight=100) == 60
    assert provider.peak == 5


def test_one_slow_message_holds_up_only_its_own_step(store, project):
    """Issue 14: the next batch is claimed while a message is in flight, and the steps whose
    messages are done are completed (in the store) while it still is."""
    first = texts(store, project, 30)[0]

    class OneSlow(AsyncProvider):
        async def send_async(self, message: OutgoingMessage) -> SendResult:
            while message.key.startswith(f"{first}:") and not self.release.is_set():
                await asyncio.sleep(0.01)
            return await super().send_async(message)

    provider = OneSlow(latency=0.01)
    ran: list[int] = []
    worker = threading.Thread(target=lambda: ran.append(drain(store, T0, provider, batch=10)))
    worker.start()
    try:
        for _ in range(1000):  # the 29 others, in three batches
            if statuses(store).get("sent") == 29:
                break
            provider.release.wait(0.01)
        assert statuses(store) == {"sent": 29, "sending": 1}
    finally:
        provider.release.set()
        worker.join(30)
    assert ran == [30]
    assert statuses(store) == {"sent": 30}


def test_in_flight_one_sends_one_at_a_time_in_the_engine_thread(store, project):
    texts(store, project, 5)
    channel = MemoryChannel()
    assert drain(store, T0, channel, in_flight=1) == 5
    assert len(channel.sent) == 5 and channel.peak == 1


def test_a_retry_after_from_an_async_channel_waits_as_asked(store, project):
    texts(store, project, 1)

    class Busy(AsyncProvider):
        async def send_async(self, message: OutgoingMessage) -> SendResult:
            raise TemporaryFailure("Twilio 429: too many requests", retry_after=120)

    assert drain(store, T0, Busy()) == 1
    with store.begin() as connection:
        row = connection.execute(select(Execution.status, Execution.detail)).one()
    assert row.status == "retry" and row.detail["retry_at"] >= "2025-03-03T09:02"


def test_the_event_loop_setting_picks_the_loop_the_sends_run_on(tmp_path):
    import uvloop

    from nurture.engine.delivery.sends import new_event_loop
    from nurture.errors import ConfigError
    from nurture.settings import load_settings

    (tmp_path / "nurture.toml").write_text('event_loop = "asyncio"\n')
    chosen = load_settings(tmp_path).event_loop
    (tmp_path / "nurture.toml").write_text('event_loop = "libuv"\n')
    with pytest.raises(ConfigError, match="event_loop"):
        load_settings(tmp_path)
    loops = {kind: new_event_loop(kind) for kind in (chosen, "auto", "uvloop")}
    try:
        assert chosen == "asyncio" and not isinstance(loops["asyncio"], uvloop.Loop)
        assert isinstance(loops["auto"], uvloop.Loop) and isinstance(loops["uvloop"], uvloop.Loop)
    finally:
        for loop in loops.values():
            loop.close()
