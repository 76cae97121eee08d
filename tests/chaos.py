"""Fault injection against real daemons: misbehaving providers (tests/servers.py), daemons
killed at seeded random moments and restarted (a store that goes away: tests/proxy.py).

    with Providers(project, seed=7) as providers, Daemons(project, url, logs) as daemons:
        daemons.start(2)
        daemons.kill_one()        # SIGKILL one at random, start another in its place
        ...
    tally = Tally.of(store, providers)   # what each lead got, per step

The test process runs the fake servers; the daemons are `python -m nurture run --channel live`.
"""

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from servers import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    FakeTwilio,
    Fault,
    Faults,
    Mailbox,
    smtp_server,
)
from sqlalchemy import Row, bindparam, select, update

from nurture.store.db import Store
from nurture.store.tables import Enrollment, Execution, Lead, SequenceVersion
from nurture.testing import enroll_many

# Providers --------------------------------------------------------------------------------------

FLAKY = {
    Fault("slow", 0.2): 0.08,  # answers within the client's timeout
    Fault("late", 1.2): 0.06,  # takes the message, answers after the timeout
    Fault("drop"): 0.04,  # takes the message, closes the connection unanswered
    Fault("cut"): 0.03,  # Twilio: takes the message, its answer cut halfway (the relay: none)
    Fault("busy", 1): 0.05,  # 429 with Retry-After: 1 (SMTP 450)
    Fault("error", status=503): 0.05,  # 5xx (SMTP 451)
    Fault("reset"): 0.03,  # the connection is reset before anything is read
}
"""The odds of each fault per message request (reset: per connection)."""
TIMEOUT = 0.6
"""The channels' provider timeout in the daemons, seconds: a late answer comes after it."""


class Providers:
    """FakeTwilio and the SMTP relay, flaky with `FLAKY`'s seeded odds, written into the
    project as its [twilio] and [email] settings; `refusing()` takes both down for a while."""

    def __init__(self, project: Path, seed: int, odds: dict[Fault, float] | None = None) -> None:
        odds = FLAKY if odds is None else odds
        self.project = project
        self.twilio = FakeTwilio(Faults(odds, seed=seed))
        self.mailbox = Mailbox(faults=Faults(odds, seed=seed + 1))
        self.smtp_port: int | None = None
        self._api: Any = None
        self._relay: Any = None

    def __enter__(self) -> "Providers":
        self._api = self.twilio.serving()
        api = self._api.__enter__()
        self._start_relay()
        self._configure(api)
        return self

    def __exit__(self, *exc: object) -> None:
        self._relay.__exit__(None, None, None)
        self._api.__exit__(None, None, None)

    def _start_relay(self) -> None:
        self._relay = smtp_server(self.mailbox, port=self.smtp_port)
        self.smtp_port = self._relay.__enter__()

    def _configure(self, api: str) -> None:
        (self.project / "nurture.toml").write_text(
            'sequences_dir = "sequences"\ntimezone = "UTC"\n'
            f'[twilio]\naccount_sid = "{ACCOUNT_SID}"\nsms_from = "+15550001111"\n'
            f'api_url = "{api}"\ntimeout = {TIMEOUT}\n'
            f'[email]\nhost = "127.0.0.1"\nport = {self.smtp_port}\nsecurity = "none"\n'
            f'from_address = "coach@example.com"\ntimeout = {TIMEOUT}\n'
            '[unsubscribe]\nurl = "https://coach.example.com/u/{token}"\n'
        )
        (self.project / ".env").write_text(
            f"NURTURE_TWILIO__AUTH_TOKEN={AUTH_TOKEN}\n"
            "NURTURE_UNSUBSCRIBE__SECRET=chaos-unsubscribe-secret\n"
        )

    @contextmanager
    def refusing(self, seconds: float) -> Iterator[None]:
        """Nothing listens on Twilio's or the relay's port for `seconds` (connections refused;
        the relay hangs up on the connections it had)."""
        with self.twilio.outage():
            self._relay.__exit__(None, None, None)
            try:
                time.sleep(seconds)
                yield
            finally:
                self._start_relay()

    def calm(self) -> None:
        """No more faults from now on (what was injected stays counted)."""
        for faults in (self.twilio.faults, self.mailbox.faults):
            with faults.lock:
                faults.odds.clear()
                faults.queue.clear()

    def injected(self) -> Counter[str]:
        """Faults injected by both servers, by kind."""
        return self.twilio.faults.injected + self.mailbox.faults.injected

    def received(self) -> Counter[tuple[str, str]]:
        """Copies stored per (recipient, text), by Twilio and by the relay."""
        return self.twilio.copies() + self.mailbox.copies()


# Daemons ----------------------------------------------------------------------------------------


UNBUFFERED = os.environ | {"PYTHONUNBUFFERED": "1"}
"""A daemon killed with SIGKILL has written every line it logged."""


class Daemons:
    """Real `nurture run --channel live` processes on one store, each logging to its own file
    in `logs`; `kill_one` SIGKILLs one chosen with the seeded `random` and starts another."""

    def __init__(self, project: Path, url: str, logs: Path, seed: int, *options: str) -> None:
        self.project, self.url, self.logs, self.options = project, url, logs, options
        self.random = random.Random(seed)
        self.running: list[subprocess.Popen] = []
        self.log_of: dict[subprocess.Popen, Path] = {}
        self.kills = 0
        logs.mkdir(parents=True, exist_ok=True)

    def __enter__(self) -> "Daemons":
        return self

    def __exit__(self, *exc: object) -> None:
        for process in self.running:
            if process.poll() is None:
                process.kill()
                process.wait(30)

    def start(self, count: int = 1) -> None:
        """Start `count` more daemons."""
        for _ in range(count):
            path = self.logs / f"daemon-{len(self.log_of) + 1}.log"
            command = [
                sys.executable,
                "-m",
                "nurture",
                "--database-url",
                self.url,
                "run",
                "--channel",
                "live",
                "--log-format",
                "json",
                *self.options,
            ]
            with path.open("w") as log:
                process = subprocess.Popen(
                    command, cwd=self.project, stdout=log, stderr=subprocess.STDOUT, env=UNBUFFERED
                )
            self.running.append(process)
            self.log_of[process] = path

    def kill_one(self) -> None:
        """SIGKILL one daemon (the seeded choice) and start another in its place."""
        victim = self.random.choice(self.running)
        victim.send_signal(signal.SIGKILL)
        victim.wait(30)
        self.running.remove(victim)
        self.kills += 1
        self.start()
        self.wait_started(self.running[-1])

    def wait_started(self, process: subprocess.Popen, timeout: float = 30) -> None:
        """Wait until `process` logged `started` (the next kill lands on a working daemon)."""
        deadline = time.monotonic() + timeout
        while '"event": "started"' not in self.log_of[process].read_text():
            assert process.poll() is None, self.log_of[process].read_text()[-3000:]
            assert time.monotonic() < deadline, "a daemon did not start"
            time.sleep(0.05)

    def died(self) -> list[str]:
        """The log of each daemon that exited without being killed."""
        return [self.log_of[p].read_text() for p in self.running if p.poll() is not None]

    def stop(self) -> None:
        """SIGTERM every daemon; each must stop cleanly (exit 0)."""
        for process in self.running:
            process.send_signal(signal.SIGTERM)
        for process in self.running:
            process.wait(60)
        failed = [self.log_of[p].read_text() for p in self.running if p.returncode != 0]
        assert not failed, "a daemon did not stop cleanly:\n" + "\n".join(failed)[-4000:]

    def events(self) -> Counter[str]:
        """The events every daemon logged (started, dispatched, rescued...), and `traceback`."""
        counted: Counter[str] = Counter()
        for path in self.log_of.values():
            for line in path.read_text().splitlines():
                if line.startswith("{"):
                    counted[json.loads(line).get("event", "?")] += 1
                elif line.startswith("Traceback"):
                    counted["traceback"] += 1
        return counted


# What each lead got -----------------------------------------------------------------------------

LEAD = re.compile(r"(Lead \d+): (\w+)")
"""Every message of the chaos sequences starts `{{ lead.name }}: STEP_ID`."""


@dataclass
class Tally:
    """Messages the providers received per lead-step, against what the store says."""

    lead_steps: int = 0
    once: int = 0
    doubled: int = 0  # received twice or more
    failed: int = 0  # never received, and its execution failed with a reason
    lost: int = 0  # never received, and nothing says why
    misreported: int = 0  # received, but the log does not say `sent`
    stalled: int = 0  # enrollments neither completed nor ended with a reason
    settled_by_engine: int = 0  # uncertain sends the engine settled by asking the provider
    enrollments: Counter[str] = field(default_factory=Counter)

    @classmethod
    def of(cls, store: Store, received: Counter[tuple[str, str]]) -> "Tally":
        """The tally of every enrollment in `store` against what the providers `received`."""
        seen = Seen.of(store)
        got = seen.per_lead_step(received)
        tally = cls(settled_by_engine=seen.settled)
        for row in seen.enrollments:
            tally.enrollments[row.status] += 1
            tally.stalled += not _ended(row)
            for step_id in seen.steps[(row.sequence_id, row.version)]:
                latest = seen.latest.get((row.id, step_id))
                tally._count(got[(row.lead_id, step_id)], latest)
        return tally

    def _count(self, copies: int, latest: Row | None) -> None:
        self.lead_steps += 1
        self.once += copies == 1
        self.doubled += copies > 1
        if copies == 0 and latest is not None and latest.status == "failed" and latest.error:
            self.failed += 1
        elif copies == 0:
            self.lost += 1
        elif latest is None or latest.status != "sent":
            self.misreported += 1

    def line(self) -> str:
        """The counts in one line, for the test's output."""
        return (
            f"{self.lead_steps} lead-steps: {self.once} received once, {self.doubled} doubled, "
            f"{self.lost} lost silently, {self.failed} failed with a reason, "
            f"{self.misreported} received but not logged sent; {self.stalled} stalled of "
            f"{sum(self.enrollments.values())} enrollments {dict(self.enrollments)}; "
            f"{self.settled_by_engine} uncertain sends settled by the engine"
        )


def _ended(enrollment: Row) -> bool:
    if enrollment.status == "completed":
        return True
    return enrollment.status in ("failed", "stopped") and bool(enrollment.exit_reason)


@dataclass
class Seen:
    """The store's leads, enrollments, steps and latest execution per (enrollment, step)."""

    recipients: dict[str, int]
    enrollments: list[Row]
    steps: dict[tuple[int, int], list[str]]
    latest: dict[tuple[int, str], Row]
    settled: int

    @classmethod
    def of(cls, store: Store) -> "Seen":
        """Read them from `store`."""
        x = Execution.__table__.c
        with store.begin() as connection:
            leads = connection.execute(select(Lead.id, Lead.phone, Lead.email)).all()
            enrollments = connection.execute(select(Enrollment.__table__)).all()
            versions = connection.execute(select(SequenceVersion.__table__)).all()
            executions = connection.execute(
                select(x.enrollment_id, x.step_id, x.status, x.error, x.detail).order_by(x.id)
            ).all()
        recipients = {lead.phone: lead.id for lead in leads}
        recipients |= {lead.email: lead.id for lead in leads}
        steps = {
            (v.sequence_id, v.version): [s["id"] for s in v.definition["steps"]] for v in versions
        }
        latest = {(row.enrollment_id, row.step_id): row for row in executions}
        # The engine notes how it settled in words; `enrollments settle` notes who decided.
        settled = sum(isinstance((row.detail or {}).get("settled"), str) for row in executions)
        return cls(recipients, list(enrollments), steps, latest, settled)

    def per_lead_step(self, received: Counter[tuple[str, str]]) -> Counter[tuple[int, str]]:
        """Copies received per (lead id, step id): the lead by recipient, the step by text."""
        got: Counter[tuple[int, str]] = Counter()
        for (recipient, text), copies in received.items():
            match = LEAD.search(text)
            assert match and recipient in self.recipients, f"a stray message: {recipient} {text}"
            got[(self.recipients[recipient], match[2])] += copies
        return got

    def held(self) -> list[Row]:
        """Enrollments waiting for a decision (unknown)."""
        return [row for row in self.enrollments if row.status == "unknown"]


def decide(store: Store, received: Counter[tuple[str, str]]) -> dict[str, list[int]]:
    """What a coach who reads the providers' records decides for each held send: `sent` where
    the provider has the message, `resend` where it does not (enrollment ids per decision)."""
    seen = Seen.of(store)
    got = seen.per_lead_step(received)
    decisions: dict[str, list[int]] = {"sent": [], "resend": []}
    for row in seen.held():
        decisions["sent" if got[(row.lead_id, row.step_id)] else "resend"].append(row.id)
    return decisions


def enroll_leads(store: Store, count: int) -> None:
    """`count` leads in the only sequence, due a minute ago, each with a phone of its own."""
    enroll_many(store, count, datetime.now(UTC) - timedelta(minutes=1))
    lead = Lead.__table__
    with store.begin(immediate=True) as connection:
        ids = connection.execute(select(lead.c.id)).scalars().all()
        phones = [{"key": i, "phone": f"+1555{i:07d}"} for i in ids]
        connection.execute(update(lead).where(lead.c.id == bindparam("key")), phones)


def statuses(store: Store) -> Counter[str]:
    """Enrollments per status."""
    with store.begin() as connection:
        return Counter(connection.execute(select(Enrollment.status)).scalars())


def wait_quiet(store: Store, timeout: float) -> None:
    """Wait until no enrollment is active or running (each is done, or held for a decision)."""
    deadline = time.monotonic() + timeout
    while (now := statuses(store))["active"] + now["running"]:
        assert time.monotonic() < deadline, f"enrollments still live after {timeout} s: {now}"
        time.sleep(0.2)
