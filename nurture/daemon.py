"""The daemon: APScheduler ticks dispatch, lease rescue and heartbeats; lead state stays in the store."""

import json
import logging
import os
import signal
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import delete, insert, update

from nurture import dispatch
from nurture.channels import Channels
from nurture.store.db import Store
from nurture.store.tables import Worker

Clock = Callable[[], datetime]
Log = Callable[[str], None]


@dataclass(frozen=True)
class DaemonOptions:
    batch: int = 500
    senders: int = 8
    poll: float = 5.0
    lease: timedelta = timedelta(minutes=5)
    heartbeat: float = 5.0
    default_zone: str = "UTC"
    log_format: str = "text"


def worker_name() -> str:
    """host:pid:random, unique across machines and restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Daemon:
    """One process: dispatch when steps are due (or every poll), rescue leases, beat."""

    def __init__(
        self,
        store: Store,
        channels: Channels,
        options: DaemonOptions,
        clock: Clock,
        log: Log,
        coach: dict[str, Any] | None = None,
    ) -> None:
        self.store, self.channels, self.options = store, channels, options
        self.clock, self.write = clock, log
        self.coach = coach or {}
        self.worker = worker_name()
        self.executed = 0
        self.stopping = threading.Event()
        self.scheduler = BackgroundScheduler(job_defaults={"coalesce": True, "max_instances": 1})
        # A tick still draining (a long, rate-limited batch) makes APScheduler skip the next one
        # and warn each time; that is the design, not news. Job errors still log (executors).
        logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)

    def log(self, event: str, **fields: Any) -> None:
        """One line per event: `event key=value ...`, or a JSON object with --log-format json."""
        record = {"at": self.clock().isoformat(timespec="seconds"), "event": event, **fields}
        if self.options.log_format == "json":
            self.write(json.dumps(record, default=str))
        else:
            self.write(" ".join([record["at"], event, *(f"{k}={v}" for k, v in fields.items())]))

    def drain(self) -> int:
        """Run every due step now; returns how many ran."""
        total = 0
        while not self.stopping.is_set():
            done = dispatch.run_due(
                self.store,
                self.clock(),
                worker=self.worker,
                channels=self.channels,
                batch=self.options.batch,
                senders=self.options.senders,
                lease=self.options.lease,
                default_zone=self.options.default_zone,
                coach=self.coach,
            )
            total += done
            if done == 0:
                break
        self.executed += total
        return total

    def tick(self) -> None:
        """Dispatch, then sleep until the next due step or the poll interval, whichever is first."""
        done = self.drain()
        if done:
            self.log("dispatched", steps=done)
        self._wake_at(dispatch.next_due(self.store))

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
        rescued = dispatch.rescue_leases(self.store, self.clock())
        if rescued:
            self.log("rescued", leases=rescued)

    def beat(self) -> None:
        with self.store.begin() as connection:
            connection.execute(
                update(Worker)
                .where(Worker.id == self.worker)
                .values(seen_at=self.clock(), executed=self.executed)
            )

    def run(self) -> None:
        """Run until SIGTERM or SIGINT, then finish in-flight work and release leases."""
        self._register()
        self._install_signals()
        self.log("started", worker=self.worker, poll=self.options.poll, batch=self.options.batch)
        self.scheduler.add_job(
            self.tick,
            "interval",
            seconds=self.options.poll,
            id="dispatch",
            next_run_time=datetime.now().astimezone(),
        )
        lease_check = max(self.options.lease.total_seconds() / 2, 1)
        self.scheduler.add_job(self.rescue, "interval", seconds=lease_check, id="rescue")
        self.scheduler.add_job(
            self.beat, "interval", seconds=self.options.heartbeat, id="heartbeat"
        )
        self.scheduler.start()
        try:
            self.stopping.wait()
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        self.scheduler.shutdown(wait=True)  # the tick in flight finishes its batch
        released = dispatch.release(self.store, self.worker)
        with self.store.begin() as connection:
            connection.execute(delete(Worker).where(Worker.id == self.worker))
        self.log("stopped", worker=self.worker, executed=self.executed, released=released)

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
