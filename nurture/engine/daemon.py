"""The daemon: APScheduler ticks dispatch, settling, lease rescue and heartbeats; lead state
stays in the store.

A tick the store fails (an outage, a lost connection) logs one line, `store unavailable:
REASON` (the reason names no host, user, password or database), and the next tick carries on:
what a failed batch recorded already is found by the next claim, its leases are released or
expire, so nothing is lost.
"""

import gc
import json
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Connection, delete, insert, update
from sqlmodel import col

from nurture.channels import Channels
from nurture.channels.config import ImapConfig
from nurture.engine import calendars, dispatch, inbound, notes
from nurture.engine.config import EngineConfig, NoteOptions, worker_name
from nurture.engine.delivery.sends import Loop
from nurture.engine.dispatch import Clock
from nurture.errors import ChannelError
from nurture.store.connect import normalize_url, reason
from nurture.store.db import STORE_ERRORS, Store
from nurture.store.tables import Worker

AT_ONCE = ("dispatch", "settle", "mail")
"""The daemon's jobs that run as soon as it starts."""
Log = Callable[[str], None]


@dataclass(frozen=True)
class DaemonOptions:
    """How the daemon ticks and logs; its batches run as `engine` says (its worker aside: each
    daemon names its own)."""

    engine: EngineConfig = field(default_factory=EngineConfig)
    poll: float = 5.0
    heartbeat: float = 5.0
    settle: float = 60.0
    """Seconds between asks to the providers about unknown sends (and for each, since its last)."""
    log_format: str = "text"
    notes: NoteOptions = field(default_factory=NoteOptions)
    """How the coach's waiting notifications go (delivered every tick)."""
    mailbox: ImapConfig | None = None
    """The IMAP mailbox of leads' answers by email, read every `mailbox.poll` seconds."""


class Daemon:
    """One process: dispatch when steps are due (or every poll), rescue leases, beat."""

    def __init__(
        self,
        store: Store,
        channels: Channels,
        options: DaemonOptions,
        clock: Clock,
        log: Log,
    ) -> None:
        self.store, self.channels, self.options = store, channels, options
        self.clock, self.write = clock, log
        self.engine = replace(options.engine, worker=worker_name())
        self.worker = self.engine.worker
        self.executed = 0
        self.stopping = threading.Event()
        self.scheduler = BackgroundScheduler(job_defaults={"coalesce": True, "max_instances": 1})
        # A tick still draining (a long, rate-limited batch) makes APScheduler skip the next one
        # and warn each time; that is the design, not news. Job errors still log (executors).
        logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)

    def log(self, event: str, text: str | None = None, **fields: Any) -> None:
        """One line per event: `event key=value ...` (or `text`), or a JSON object with
        --log-format json."""
        record = {"at": self.clock().isoformat(timespec="seconds"), "event": event, **fields}
        if self.options.log_format == "json":
            self.write(json.dumps(record, default=str))
        else:
            said = [text] if text else [event, *(f"{k}={v}" for k, v in fields.items())]
            self.write(" ".join([record["at"], *said]))

    def drain(self, report: dispatch.Report | None = None) -> int:
        """Run every due step now; returns how many ran."""
        return dispatch.drain(
            self.store, self.clock, self.engine, self.channels, report, self.stopping, self._ran
        )

    def _ran(self, steps: int) -> None:
        self.executed += steps  # batch by batch: the heartbeat shows it while a long drain goes on

    def tick(self) -> None:
        """Dispatch, then sleep until the next due step or the poll interval, whichever is first."""
        report = dispatch.Report()
        done = self.drain(report)
        if done:
            self.log("dispatched", steps=done)
        self._report(report)
        self.sync_calendars()
        self.notify()
        self._wake_at(dispatch.next_due(self.store))

    def notify(self) -> None:
        """Deliver the coach's notifications that are due (replies, held steps)."""
        channel = self.channels.get("notification")
        if channel is None:  # a daemon without channels (tests of its other jobs)
            return
        done = notes.deliver_waiting(self.store, self.clock(), channel, self.options.notes)
        if done.sent or done.failed or done.unknown:
            self.log("notified", sent=done.sent, failed=done.failed, unknown=done.unknown)

    def sync_calendars(self) -> None:
        """Invitations and the coach's calendar, for the appointments booked or changed."""
        if self.engine.calendars is None:
            return
        synced = calendars.sync(self.store, self.engine.calendars, self.clock())
        if synced.invited or synced.written:
            self.log("calendars", invited=synced.invited, written=synced.written)
        for problem in synced.problems:
            self.log("calendar", problem)

    def read_mail(self) -> None:
        """Receive the unseen answers of the mailbox (their notes go at the next tick)."""
        if self.options.mailbox is None:
            return
        try:
            polled = inbound.read_mailbox(self.store, self.options.mailbox, self.clock())
        except ChannelError as error:  # the mailbox unreachable: the next look tries again
            self.log("mailbox", str(error))
            return
        if polled.outcomes:
            counts: dict[str, Any] = dict(sorted(polled.outcomes.items()))
            self.log("mail", **counts)
        for problem in polled.unreadable:
            self.log("mailbox", f"skipped {problem}")

    def settle(self) -> None:
        """Ask the providers about unknown sends not asked about for `settle` seconds."""
        report, now = dispatch.Report(), self.clock()
        before = now - timedelta(seconds=self.options.settle)
        dispatch.settle_unknown(
            self.store, now, self.engine, self.channels, before, report, False, self.stopping
        )
        self._report(report)

    def _report(self, report: dispatch.Report) -> None:
        if report.lost:  # rescued while their batch worked: a stall longer than a lease
            self.log("lost", leases=report.lost)
        if report.settled:
            self.log("settled", sends=report.settled)
        if report.held:
            self.log("held", sends=report.held)
        if report.deferred:  # by a frequency cap or an exclusive sequence
            self.log("deferred", steps=report.deferred)

    def _wake_at(self, due: datetime | None) -> None:
        now = self.clock()
        wait = (
            self.options.poll
            if due is None
            else min(self.options.poll, max((due - now).total_seconds(), 0))
        )
        if not self.stopping.is_set():
            self.scheduler.modify_job(
                "dispatch", next_run_time=datetime.now().astimezone() + timedelta(seconds=wait)
            )

    def rescue(self) -> None:
        """Maintenance: expired leases back to active, long-dead daemons' heartbeats gone."""
        rescued = dispatch.rescue_leases(self.store, self.clock())
        if rescued:
            self.log("rescued", leases=rescued)
        with self.store.begin() as connection:
            pruned = prune_workers(connection, self.clock())
        if pruned:
            self.log("pruned", workers=pruned)

    def beat(self) -> None:
        with self.store.begin() as connection:
            connection.execute(
                update(Worker)
                .where(col(Worker.id) == self.worker)
                .values(seen_at=self.clock(), executed=self.executed)
            )

    def run(self) -> None:
        """Run until SIGTERM or SIGINT, then finish in-flight work and release leases."""
        self._register()
        self._install_signals()
        self.log("started", worker=self.worker, poll=self.options.poll, batch=self.engine.batch)
        lease_check = max(self.engine.lease.total_seconds() / 2, 1)
        jobs = {"dispatch": (self.tick, self.options.poll), "rescue": (self.rescue, lease_check)}
        jobs |= {"settle": (self.settle, self.options.settle)}
        jobs |= {"heartbeat": (self.beat, self.options.heartbeat)}
        if self.options.mailbox is not None:
            jobs |= {"mail": (self.read_mail, self.options.mailbox.poll)}
        for name, (work, every) in jobs.items():
            # APScheduler pauses a job given next_run_time=None: the others start after `every`.
            at_once = {"next_run_time": datetime.now().astimezone()} if name in AT_ONCE else {}
            self.scheduler.add_job(
                self.guarded(work), "interval", seconds=every, id=name, **at_once
            )
        gc.freeze()  # what start-up made (modules, settings, specs) is never traversed again
        self.scheduler.start()
        try:
            self.stopping.wait()
        finally:
            self.shutdown()

    def guarded(self, work: Callable[[], Any]) -> Callable[[], Any]:
        """`work`, logging one line instead of a traceback when the store fails it (None then)."""

        def run() -> Any:
            try:
                return work()
            except STORE_ERRORS as error:
                said = outage(error, self.store.url)
                self.log("store_unavailable", f"store unavailable: {said}", reason=said)
                return None

        return run

    def shutdown(self) -> None:
        self.scheduler.shutdown(wait=True)  # the tick in flight finishes its sends
        Loop.close(self.channels)
        released = self.guarded(lambda: dispatch.release(self.store, self.worker))()
        self.guarded(self._unregister)()
        self.log("stopped", worker=self.worker, executed=self.executed, released=released)

    def _unregister(self) -> None:
        with self.store.begin() as connection:
            connection.execute(delete(Worker).where(col(Worker.id) == self.worker))

    def _register(self) -> None:
        now = self.clock()
        with self.store.begin() as connection:
            connection.execute(
                insert(Worker).values(
                    id=self.worker,
                    hostname=socket.gethostname(),
                    pid=os.getpid(),
                    started_at=now,
                    seen_at=now,
                )
            )

    def _install_signals(self) -> None:
        def stop(signum: int, _frame: object) -> None:
            self.log("stopping", signal=signal.Signals(signum).name)
            self.stopping.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)


def outage(error: Exception, url: str) -> str:
    """Why the store failed, as the driver says it, without its host, user, password or database."""
    cause = error.__cause__ or error
    said = f"{type(getattr(cause, 'orig', None) or cause).__name__}: {reason(cause)}"
    parsed = normalize_url(url)
    secrets = (parsed.host, parsed.username, parsed.password, parsed.database, parsed.port)
    for secret in sorted({str(part) for part in secrets if part}, key=len, reverse=True):
        said = said.replace(secret, "***")
    return said


PRUNE_AFTER = timedelta(days=1)
"""A daemon silent this long is gone for good: its heartbeat row is deleted."""


def prune_workers(
    connection: Connection, now: datetime, older_than: timedelta = PRUNE_AFTER
) -> int:
    """Delete the heartbeat rows of daemons silent for longer than `older_than`; how many.

    The daemon's maintenance tick runs it: `nurture status` only reads, so a dead daemon's row
    stays until then (a live daemon beats every few seconds and is never this old).
    """
    return connection.execute(delete(Worker).where(col(Worker.seen_at) < now - older_than)).rowcount
