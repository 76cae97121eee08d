"""One message's send and what the channel's answer means for its step; the event loop that
carries every send of this process.

What a channel's failure means for the step:

- PermanentFailure: failed, never retried.
- TemporaryFailure: retried with backoff; it provably did not reach the provider.
- UncertainSend, or any other exception (a dropped connection, a bug after the request went
  out): unknown. The request may have reached the provider, so it is never retried blindly:
  nurture.engine.delivery.settling asks the provider where the channel can tell, else a human decides.
"""

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress

from nurture.channels import (
    Channels,
    OutgoingMessage,
    PermanentFailure,
    SendResult,
    TemporaryFailure,
    UncertainSend,
)
from nurture.channels.protocol import close, deliver
from nurture.engine.complete import Job
from nurture.errors import ConfigError
from nurture.store.db import Store

SETTLE_HINT = "settle it: nurture enrollments settle"
BLOCKING_SENDERS = 64
"""Threads of the event loop for channels without `send_async` (Slack, webhooks, tests' fakes)."""


def uncertain(reason: str) -> str:
    """The error of a send that may have reached the provider."""
    return f"a send may have happened: {reason} ({SETTLE_HINT})"


def send(job: Job, channels: Channels) -> None:
    """Send the job's message in this thread and set its outcome from the channel's answer."""
    try:
        result = channels[_message(job).channel].send(_message(job))
    except Exception as error:
        failed(job, error)
    else:
        sent(job, result)


async def send_async(job: Job, channels: Channels) -> None:
    """Send the job's message on the running loop and set its outcome from the answer."""
    try:
        result = await deliver(channels[_message(job).channel], _message(job))
    except Exception as error:
        failed(job, error)
    else:
        sent(job, result)


def _message(job: Job) -> OutgoingMessage:
    assert job.message is not None, "only a job with a message is sent"
    return job.message


def sent(job: Job, result: SendResult) -> None:
    job.status, job.provider_id, job.outbox = "sent", result.provider_id, result.outbox


def failed(job: Job, error: Exception) -> None:
    """The step's outcome from the failure a send raised."""
    if isinstance(error, PermanentFailure):
        job.status, job.error = "failed", str(error) or "permanent failure"
        if error.unsubscribed:
            job.note(unsubscribed=True)
    elif isinstance(error, TemporaryFailure):
        job.status, job.error, job.retry_after = "retry", describe(error), error.retry_after
    else:  # UncertainSend, or anything after the request may have gone out
        job.status, job.error = "unknown", uncertain(describe(error))


def describe(error: Exception) -> str:
    """A failure for the log: a channel's own message, else the exception's class and text."""
    if isinstance(error, (TemporaryFailure, UncertainSend)):
        return str(error) or type(error).__name__
    return f"{type(error).__name__}: {error}"


def new_event_loop(kind: str = "auto") -> asyncio.AbstractEventLoop:
    """The `event_loop` setting's loop: libuv's (uvloop) where it is installed
    (uvicorn[standard] brings it) for `auto` and `uvloop`, else asyncio's own."""
    if kind == "asyncio":
        return asyncio.new_event_loop()
    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows and PyPy have no uvloop
        if kind == "uvloop":
            raise ConfigError(
                'event_loop = "uvloop" but uvloop is not installed: install it, or say "auto"'
            ) from None
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class Loop:
    """This process's event loop, in a thread of its own: the sends of every batch run on it,
    so a channel's connection pool (bound to the loop) lives as long as the process."""

    _lock = threading.Lock()
    _running: "Loop | None" = None

    def __init__(self, kind: str = "auto") -> None:
        self.kind = kind
        self.loop = new_event_loop(kind)
        self.loop.set_default_executor(
            ThreadPoolExecutor(BLOCKING_SENDERS, thread_name_prefix="send")
        )
        started = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(started,), daemon=True, name="sends")
        self.thread.start()
        started.wait()

    @classmethod
    def get(cls, kind: str = "auto") -> "Loop":
        """The process's loop, started on first use (of the `event_loop` setting's kind)."""
        with cls._lock:
            if cls._running is None:
                cls._running = cls(kind)
            return cls._running

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(started.set)
        self.loop.run_forever()

    def start(self, work: Callable[[], None]) -> None:
        """Run `work` (which starts tasks) in the loop's thread."""
        self.loop.call_soon_threadsafe(work)

    @classmethod
    def close(cls, channels: Channels) -> None:
        """Close the connection pools the channels opened on the process's loop, if it runs."""
        loop = cls._running
        if loop is None:
            return
        for channel in {id(c): c for c in channels.values()}.values():
            with suppress(Exception):
                asyncio.run_coroutine_threadsafe(close(channel), loop.loop).result(10)


_locks: dict[str, threading.Lock] = {}


@contextmanager
def serialized(store: Store) -> Iterator[None]:
    """On SQLite, this process's writers wait their turn here: SQLite's own busy handler,
    which only one writer passes at a time anyway, sleeps in steps of up to 100 ms."""
    if store.engine.dialect.name != "sqlite":
        yield
        return
    with _locks.setdefault(store.url, threading.Lock()):
        yield
