"""The engine's delivery guarantees: leases that hold while a slow batch works, and sends whose
fate is unclear settled or held, never repeated blindly (DESIGN.md §4, crash safety)."""

import logging
import signal
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from builders import sequence, step
from enrolling import apply
from sqlalchemy import select

from nurture.channels.memory import MemoryChannel
from nurture.daemon import Daemon, DaemonOptions
from nurture.store.db import Store
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
    options = DaemonOptions(batch=60, senders=4, poll=0.1, lease=timedelta(seconds=1))
    with caplog.at_level(logging.ERROR):
        run_daemon(store, channel, lambda: statuses(store) == {"completed": 60}, options)
    assert statuses(store) == {"completed": 60}, "enrollments stalled"
    assert sorted(sends_per_step(channel).values()) == [1] * 120, "a message was sent twice"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    with store.begin() as connection:
        logged = Counter(connection.execute(select(Execution.status)).scalars())
    assert logged == {"sent": 120}
