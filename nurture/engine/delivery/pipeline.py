"""The send pipeline: batch after batch claimed, their messages sent on the event loop, each
step completed as soon as its message is done (DESIGN.md §4).

    steps = Pipeline(store, config, channels, report).run(claim)

`claim` leases the next batch and returns its jobs, decided (nurture.engine.dispatch does it).
Steps without a message, and messages to a transactional channel (the outbox), complete in the
next write. A message is recorded `sending` in the short transaction that also completes the
steps finished since the last one, just before it is handed to the event loop, and only when
there is room for it: at most `in_flight` messages at once, and a channel's own `concurrency`.
So a daemon killed mid-batch leaves at most `in_flight` sends whose fate is unclear, and the
messages it never reached have no record at all: they go out later, once. The next batch is
claimed while this one is still sending, as soon as fewer than half a batch wait for room, so
a slow message holds up only its own step; the claim runs in a thread of its own (its own
connection), so the writes that complete the messages landing meanwhile and hand the freed
places to waiting ones do not wait for it. Each batch's leases are renewed until its last step
is written (nurture.engine.delivery.leases).

A store failure stops the pipeline: nothing more is claimed or sent, the sends in flight are
let finish, the leases are given back where the store allows (else they expire), and the next
claim finds what was recorded (a `sending` it settles, never sends again).
"""

import asyncio
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from nurture.channels import Channels, is_transactional
from nurture.channels.protocol import concurrency
from nurture.engine.complete import Job, complete, execution_row
from nurture.engine.config import EngineConfig
from nurture.engine.delivery import sends, settling
from nurture.engine.delivery.leases import Batch, Renewal
from nurture.store import queries
from nurture.store.db import STORE_ERRORS, Store

Claim = Callable[[], "tuple[datetime, list[Job]] | None"]
"""Lease the next batch: its `now` and its jobs, decided; None when nothing is due."""
Each = Callable[[int], None]
WAKE = 0.5
"""Longest wait for a send to finish before looking at `stopping` again (seconds)."""


Pair = tuple[Job, Batch]


class Pipeline:
    """Claims, sends and completions of one drain, in the calling thread; sends on the loop."""

    def __init__(
        self,
        store: Store,
        config: EngineConfig,
        channels: Channels,
        report: Any,
        clock: Callable[[], datetime],
    ) -> None:
        self.store, self.config, self.channels, self.report = store, config, channels, report
        self.clock = clock  # the time a write records: a send's start, a step's end
        self.inline = config.in_flight <= 1  # one at a time (the dry run): no loop, no threads
        self.waiting: deque[Pair] = deque()
        self.ready: list[Pair] = []
        self.flying: Counter[str] = Counter()
        self.done: list[Pair] = []
        self.finished = threading.Condition()
        self.tasks: set[asyncio.Task[None]] = set()
        self.renewal = Renewal(store, config.worker, config.lease)
        self.steps = 0
        self.limits = {name: self._limit(name) for name in channels}
        self.claiming = False  # a claim runs in its thread
        self.claimed: list[tuple[float, Any]] = []  # its answer: (started, batch or error)
        self.completions = 0  # writes that completed steps: a claim before one may miss their next
        self.claim_after = 0  # the completions the claim in flight came after

    def run(
        self,
        claim: Claim,
        once: bool = False,
        stopping: threading.Event | None = None,
        each: Each | None = None,
    ) -> int:
        """Claim (once, or until nothing is due), send, complete; how many steps ran."""
        with self.renewal:
            try:
                self._flow(claim, once, stopping or threading.Event(), each)
            except STORE_ERRORS:
                self._abandon()
                raise
        return self.steps

    def _flow(self, claim: Claim, once: bool, stopping: threading.Event, each: Each | None) -> None:
        more, low = True, max(1, min(self.config.batch, self.config.in_flight) // 2)
        claimed = False  # since the last write: one claim, then what is ready is written first
        while True:
            if stopping.is_set():
                more = False
                self._untry_waiting()
            self._collect(block=False)
            for started, got in self._claims():
                missed = self.completions > self.claim_after  # their next steps: claim again
                more = (more and got is not None or missed) and not once and not stopping.is_set()
                if got is not None:
                    self._take(Batch(got[0], {job.claim.id for job in got[1]}, started), got[1])
                    if stopping.is_set():
                        self._untry_waiting()
            wanted = more and not self.claiming and len(self.waiting) < low
            if wanted and self.inline and not (claimed and self.ready):
                started, got = time.monotonic(), claim()
                more, claimed = got is not None and not once, True
                if got is not None:
                    self._take(Batch(got[0], {job.claim.id for job in got[1]}, started), got[1])
                continue
            if wanted and not self.inline:
                self._claim_aside(claim)
                more = more and not once
            starting = self._room()
            if starting or self.ready:
                completed, claimed = self._write(starting), False
                self.completions += completed > 0
                if each and completed:
                    each(completed)
                more = more or (completed > 0 and not once and not stopping.is_set())
                continue
            if not (self.waiting or sum(self.flying.values()) or self.claiming or self.claimed):
                return
            self._collect(block=True)

    def _claim_aside(self, claim: Claim) -> None:
        """Claim the next batch in a thread of its own; its answer lands in `claimed`."""
        self.claiming, self.claim_after = True, self.completions

        def claiming() -> None:
            started = time.monotonic()
            try:
                got: Any = claim()
            except BaseException as error:  # raised in the pipeline's thread
                got = error
            with self.finished:
                self.claiming = False
                self.claimed.append((started, got))
                self.finished.notify()

        threading.Thread(target=claiming, name="claim", daemon=True).start()

    def _claims(self) -> "list[tuple[float, tuple[datetime, list[Job]] | None]]":
        """The claims answered since the last look (a claim's error is raised here)."""
        with self.finished:
            claimed, self.claimed = self.claimed, []
        for _, got in claimed:
            if isinstance(got, BaseException):
                raise got
        return claimed

    def _take(self, batch: Batch, jobs: list[Job]) -> None:
        """A claimed batch: what sends waits for room, the rest is ready to complete."""
        self.renewal.add(batch)
        now = batch.now
        for job in jobs:
            if job.message is not None and job.status == "done":
                if is_transactional(self.channels[job.message.channel]):
                    job.sent_after = now  # its row is written by the completion: send it now
                    sends.send(job, self.channels)
                    self.ready.append((job, batch))
                else:
                    self.waiting.append((job, batch))
            elif job.status == "unknown" and settling.can_settle(job, self.channels):
                self.waiting.append((job, batch))  # a crashed send found at claim: ask
            else:
                self.ready.append((job, batch))

    def _limit(self, name: str) -> int:
        channel = self.channels[name]
        own = concurrency(channel)
        if own is None and not hasattr(channel, "send_async"):
            own = sends.BLOCKING_SENDERS  # each of its sends holds a thread
        return min(own or self.config.in_flight, self.config.in_flight)

    def _room(self) -> list[Pair]:
        """The waiting messages that fit now, in order (a full channel's wait)."""
        room = self.config.in_flight - sum(self.flying.values())
        if room <= 0 or not self.waiting:
            return []
        starting: list[Pair] = []
        skipped = deque[Pair]()
        while self.waiting and len(starting) < room:
            pair = self.waiting.popleft()
            name = pair[0].channel or ""
            if self.flying[name] < self.limits[name]:
                self.flying[name] += 1
                starting.append(pair)
            else:
                skipped.append(pair)
        skipped.extend(self.waiting)
        self.waiting = skipped
        return starting

    def _write(self, starting: list[Pair]) -> int:
        """One transaction: complete what is ready, record what starts; then send it."""
        ready, self.ready = self.ready, []
        fresh = [pair for pair in starting if pair[0].status == "done"]
        at, worker = self.clock(), self.config.worker
        try:
            with sends.serialized(self.store), self.store.begin(immediate=True) as connection:
                lost = sum(
                    complete(connection, jobs, worker, when, self.config.default_zone)
                    for when, jobs in _by_time(ready, at).items()
                )
                recorded = _record(connection, fresh, worker, at)
        except STORE_ERRORS:
            for job, _ in starting:  # none of them went
                self.flying[job.channel or ""] -= 1
            raise
        by_batch: dict[Batch, list[int]] = {}
        for job, batch in ready:
            by_batch.setdefault(batch, []).append(job.claim.id)
        for batch, ids in by_batch.items():
            self.renewal.done(batch, ids)
        self.report.add([job for job, _ in ready], lost)
        self.steps += len(ready)
        go = []
        for pair in starting:
            job, batch = pair
            if job.status == "done" and job.claim.id not in recorded:
                job.status = "untried"  # its lease was lost before it was recorded
                self._landed(pair)
                continue
            if job.claim.id in recorded:
                execution_id = recorded[job.claim.id]
                job.execution_id, job.sent_after = execution_id, at
                assert job.message is not None
                job.message = replace(job.message, execution_id=execution_id)
            go.append(pair)
        self._send(go)
        return len(ready)

    def _send(self, pairs: list[Pair]) -> None:
        if not pairs:
            return
        if self.inline:
            for pair in pairs:
                _deliver(pair[0], self.channels)
                self._landed(pair)
            return
        loop = sends.Loop.get(self.config.event_loop)
        loop.start(lambda: self._start_tasks(pairs))

    def _start_tasks(self, pairs: list[Pair]) -> None:
        """In the loop's thread: a task per message."""
        for pair in pairs:
            task = asyncio.get_running_loop().create_task(self._fly(pair))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _fly(self, pair: Pair) -> None:
        job = pair[0]
        try:
            if job.status == "done":
                await sends.send_async(job, self.channels)
            if job.status == "unknown" and settling.can_settle(job, self.channels):
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(None, settling.settle, job, self.channels)
        finally:
            self._landed(pair)

    def _landed(self, pair: Pair) -> None:
        """A send is done (any thread): the dispatcher completes it in its next write."""
        with self.finished:
            self.done.append(pair)
            self.finished.notify()

    def _collect(self, block: bool) -> None:
        with self.finished:
            if block and not self.done and not self.claimed:
                self.finished.wait(WAKE)
            done, self.done = self.done, []
        for job, _ in done:
            self.flying[job.channel or ""] -= 1
        self.ready.extend(done)

    def _untry_waiting(self) -> None:
        """Stopping: the messages not sent yet go back as they were claimed."""
        for job, batch in self.waiting:
            job.status = "untried"
            self.ready.append((job, batch))
        self.waiting.clear()

    def _abandon(self) -> None:
        """After a store failure: let the sends in flight finish, then give the leases back."""
        self.waiting.clear()
        deadline = time.monotonic() + self.config.lease.total_seconds() / 2
        while (sum(self.flying.values()) or self.claiming) and time.monotonic() < deadline:
            self._collect(block=True)
        with self.finished:
            claimed, self.claimed = self.claimed, []
        for started, got in claimed:  # a batch claimed meanwhile: its leases are given back too
            if got is not None and not isinstance(got, BaseException):
                self.renewal.add(Batch(got[0], {job.claim.id for job in got[1]}, started))
        self.renewal.give_back()


def _by_time(ready: list[Pair], at: datetime) -> dict[datetime, list[Job]]:
    """The time each step is completed at: a send's when it is done (`at`), any other step's
    its batch's claim, the `now` it ran at (as the dry run and `run --now` see it)."""
    groups: dict[datetime, list[Job]] = {}
    for job, batch in ready:
        groups.setdefault(at if job.execution_id is not None else batch.now, []).append(job)
    return groups


def _record(connection: Any, pairs: list[Pair], worker: str, now: datetime) -> dict[int, int]:
    """Record each message still this worker's as `sending`: its enrollment's execution id."""
    if not pairs:
        return {}
    rows = [execution_row(job, now, "sending", None) for job, _ in pairs]
    return queries.record_sending(connection, rows, worker)


def _deliver(job: Job, channels: Channels) -> None:
    """Send in this thread, and settle at once an uncertain answer the provider can tell about."""
    if job.status == "done":
        sends.send(job, channels)
    if job.status == "unknown" and settling.can_settle(job, channels):
        settling.settle(job, channels)
