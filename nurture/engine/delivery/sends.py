"""A batch's sends, `senders` at a time, each recorded just before its call and just after it.

A sender takes the next message and, in one short transaction, writes the outcome of the
message it sent before and records this one as `sending`; then it calls the provider, with no
transaction open. So a daemon killed mid-batch leaves at most `senders` executions whose fate
is unclear, and the messages it never reached have no record at all: they are sent later, once.
A message whose enrollment this worker no longer holds (its lease was rescued) is not sent, and
after a store failure the batch sends nothing more: both are left `untried`.

What a channel's failure means for the step:

- PermanentFailure: failed, never retried.
- TemporaryFailure: retried with backoff; it provably did not reach the provider.
- UncertainSend, or any other exception (a dropped connection, a bug after the request went
  out): unknown. The request may have reached the provider, so it is never retried blindly:
  nurture.engine.delivery.settling asks the provider where the channel can tell, else a human decides.
"""

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TypeVar

from nurture.channels import (
    Channels,
    PermanentFailure,
    TemporaryFailure,
    UncertainSend,
    is_transactional,
)
from nurture.engine.complete import Job, execution_row, finished_row
from nurture.store import queries
from nurture.store.db import STORE_ERRORS, Store

SETTLE_HINT = "settle it: nurture enrollments settle"
T = TypeVar("T")


def uncertain(reason: str) -> str:
    """The error of a send that may have reached the provider."""
    return f"a send may have happened: {reason} ({SETTLE_HINT})"


def send_all(
    store: Store, jobs: list[Job], channels: Channels, *, worker: str, senders: int, now: datetime
) -> None:
    """Send every job's message; a transactional channel's inline, the others through the pool."""
    pooled = []
    for job in jobs:
        if job.message is None or job.status != "done":
            continue
        if is_transactional(channels[job.message.channel]):
            job.sent_after = now  # it builds the row the completion stores: nothing to record
            send(job, channels)
        else:
            pooled.append(job)
    batch = _Batch(store, channels, worker, now)
    batch.record_first(pooled[:senders])
    pool(pooled, senders, batch.sender)


@dataclass
class _Ask:
    """A sender's turn at the store: `previous`'s outcome to write, `job` to record as sending."""

    previous: Job | None
    job: Job | None
    done: bool = False


class _Batch:
    """The pooled sends of one batch and what they record.

    Senders asking to record at the same moment share one transaction (a group commit): the
    first to ask writes for all who asked while the store was busy with the previous group, so
    a hundred senders need a few transactions a second, not a hundred contending ones.
    """

    def __init__(self, store: Store, channels: Channels, worker: str, now: datetime) -> None:
        self.store, self.channels, self.worker, self.now = store, channels, worker, now
        self.broken = threading.Event()
        self.turn, self.writing = threading.Condition(), False
        self.asks: list[_Ask] = []

    def record_first(self, jobs: list[Job]) -> None:
        """Record the messages the senders start with, in one transaction (and in order)."""
        if jobs:
            self._write([_Ask(None, job) for job in jobs])

    def sender(self, take: Callable[[], Job | None]) -> None:
        """One sender: record, send, and again, until no message is left.

        After a store failure it sends only what was recorded already.
        """
        previous = None
        while (job := take()) is not None:
            if job.status == "untried" or (self.broken.is_set() and job.execution_id is None):
                job.status = "untried"
                continue
            recorded = self._record(previous, job)
            if recorded:
                send(job, self.channels)
            previous = job if recorded else None
        self._record(previous, None)

    def _record(self, previous: Job | None, job: Job | None) -> bool:
        """Write `previous`'s outcome and record `job` as `sending` (unless record_first did),
        with what other senders ask meanwhile; whether `job` may be sent."""
        first = job is not None and job.execution_id is not None
        if previous is None and (job is None or first):
            return first
        ask = _Ask(previous, None if first else job)
        with self.turn:
            self.asks.append(ask)
            while not ask.done and self.writing:
                self.turn.wait()
            lead = not ask.done  # no one is writing: this sender writes for everyone waiting
            if lead:
                self.writing, group, self.asks = True, self.asks, []
        if lead:
            try:
                self._write(group)
            finally:
                with self.turn:
                    self.writing = False
                    self.turn.notify_all()
        return job is not None and job.execution_id is not None

    def _write(self, group: list[_Ask]) -> None:
        """One transaction for the group; a message not recorded is left untried."""
        finished = [finished_row(ask.previous, self.now) for ask in group if ask.previous]
        asked = [ask.job for ask in group if ask.job is not None]
        try:
            with serialized(self.store), self.store.begin(immediate=True) as connection:
                queries.finish_executions(connection, finished)
                ids = [job.claim.id for job in asked]
                held = queries.owned(connection, ids, self.worker) if ids else set()
                mine = [job for job in asked if job.claim.id in held]
                rows = [execution_row(job, self.now, "sending", None) for job in mine]
                ids = queries.insert_executions(connection, rows)
        except STORE_ERRORS:
            self.broken.set()  # the outcomes are written by the completion, if it can
            mine, ids = [], []
        for job, execution_id in zip(mine, ids, strict=True):
            job.execution_id, job.sent_after = execution_id, self.now
            if job.message is not None:  # every job asked here has one
                job.message = replace(job.message, execution_id=execution_id)
        for ask in group:
            ask.done = True
            if ask.job is not None and ask.job.execution_id is None:
                ask.job.status = "untried"


def send(job: Job, channels: Channels) -> None:
    """Send the job's message and set its outcome from the channel's answer."""
    try:
        message = job.message
        assert message is not None, "only a job with a message is sent"
        result = channels[message.channel].send(message)
    except PermanentFailure as error:
        job.status, job.error = "failed", str(error) or "permanent failure"
        if error.unsubscribed:
            job.note(unsubscribed=True)
    except TemporaryFailure as error:
        job.status, job.error, job.retry_after = "retry", describe(error), error.retry_after
    except Exception as error:  # UncertainSend, or anything after the request may have gone out
        job.status, job.error = "unknown", uncertain(describe(error))
    else:
        job.status, job.provider_id, job.outbox = "sent", result.provider_id, result.outbox


def describe(error: Exception) -> str:
    """A failure for the log: a channel's own message, else the exception's class and text."""
    if isinstance(error, (TemporaryFailure, UncertainSend)):
        return str(error) or type(error).__name__
    return f"{type(error).__name__}: {error}"


def each(items: list[T], work: Callable[[T], None], senders: int) -> None:
    """`work` on every item, `senders` at a time."""

    def loop(take: Callable[[], T | None]) -> None:
        while (item := take()) is not None:
            work(item)

    pool(items, senders, loop)


def pool(items: list[T], senders: int, loop: Callable[[Callable[[], T | None]], None]) -> None:
    """Run `loop(take)` on up to `senders` threads; `take` hands each the next item, then None."""
    pending, lock = iter(items), threading.Lock()

    def take() -> T | None:
        with lock:
            return next(pending, None)

    if len(items) <= 1 or senders <= 1:
        loop(take)
        return
    threads = _threads(senders)
    for future in [threads.submit(loop, take) for _ in range(min(senders, len(items)))]:
        future.result()


_pools: dict[int, ThreadPoolExecutor] = {}


def _threads(size: int) -> ThreadPoolExecutor:
    """One pool of senders per size for the process: threads are not started per batch."""
    if size not in _pools:
        _pools[size] = ThreadPoolExecutor(max_workers=size, thread_name_prefix="send")
    return _pools[size]


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
