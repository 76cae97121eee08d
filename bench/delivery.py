"""Benchmark delivery through the live channel with real `nurture run --once` processes; prints a
Markdown table.

    python bench/delivery.py [--per-sender 40] [--latency 0.2] [--senders 8 100] [--postgres URL]

Cases (each on a fresh store: a temp SQLite file, and a fresh schema when a Postgres server is
given with --postgres or NURTURE_TEST_DATABASE_URL):

- live: senders x --per-sender (at least 800) single-step SMS enrollments due now, sent by
  `nurture run --once --channel live --senders S` to a local server speaking Twilio's Messages
  API that answers each message after --latency seconds. Sends/s is messages over the time from
  the provider's first request to its last answer; the command's wall time, start-up excluded,
  is shown too. With S senders the ceiling is S / latency (100 / 0.2 s = 500/s).
- record: 8,000 SMS through a channel that answers at once, on 8 senders: console (not
  transactional, so each message is recorded `sending` just before its call and its outcome
  just after) against outbox (transactional: no record before, the completion writes the
  message). `nurture run --once`'s loop runs in this process, so its time has no start-up in
  it; steps/s and CPU per step of each, and the ratio: what the per-message record costs.
"""

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from datetime import UTC, datetime
from pathlib import Path

from engine import ONE_SEQUENCE, fresh_store, markdown, nurture_command, project_with
from sqlalchemy import func, select

from nurture.cli import run as cli_engine
from nurture.engine.dispatch import EngineConfig
from nurture.store.db import open_store
from nurture.store.tables import Execution
from nurture.testing import enroll_many

ACCOUNT_SID = "AC" + "0" * 32
TOKEN = "bench-token"


class SlowTwilio:
    """Twilio's Messages API, just enough: each POST to Messages.json is taken, and answered
    201 with the message after `latency` seconds (keep-alive, as Twilio's SDK expects)."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.count = 0
        self.first = self.last = 0.0
        self.loop = asyncio.new_event_loop()
        self.port = 0

    @contextmanager
    def serving(self) -> Iterator[str]:
        """Serve on 127.0.0.1 in a thread for the block; the base URL."""
        started = threading.Event()
        thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        thread.start()
        started.wait(10)
        try:
            yield f"http://127.0.0.1:{self.port}"
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            thread.join(10)

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            asyncio.start_server(self._client, "127.0.0.1", 0, backlog=512)
        )
        self.port = server.sockets[0].getsockname()[1]
        started.set()
        self.loop.run_forever()
        server.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                length = _content_length(head)
                await reader.readexactly(length)
                self._taken()
                await asyncio.sleep(self.latency)
                writer.write(_created(self.count))
                await writer.drain()
                self.last = time.monotonic()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def _taken(self) -> None:
        self.count += 1
        if self.count == 1:
            self.first = time.monotonic()


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def _created(number: int) -> bytes:
    body = json.dumps({"sid": f"SM{number:032x}", "status": "queued", "to": "+15555550100"})
    return (
        "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n{body}"
    ).encode()


def live_project(url: str, api: str) -> Path:
    """A project whose [twilio] settings point at the local server."""
    project = project_with(url, ONE_SEQUENCE)
    (project / "nurture.toml").write_text(
        f'[twilio]\naccount_sid = "{ACCOUNT_SID}"\nsms_from = "+15550001111"\napi_url = "{api}"\n'
    )
    (project / ".env").write_text(f"NURTURE_TWILIO__AUTH_TOKEN={TOKEN}\n")
    return project


def run_once(project: Path, url: str, channel: str, senders: int) -> tuple[float, float]:
    """`nurture run --once` on the project; its wall time and its CPU time, in seconds."""
    command = nurture_command(url, "run", "--once", "--channel", channel, "--senders", str(senders))
    cpu, started = children_cpu(), time.monotonic()
    done = subprocess.run(
        command, cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return time.monotonic() - started, children_cpu() - cpu


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def sent(url: str) -> int:
    with open_store(url) as store, store.begin() as connection:
        query = select(func.count()).select_from(Execution).where(Execution.status == "sent")
        return connection.execute(query).scalar_one()


def live(kind: str, server: str | None, senders: int, count: int, latency: float) -> dict:
    """`count` SMS through the live channel on `senders` senders; sends/s and wall time."""
    twilio = SlowTwilio(latency)
    with fresh_store(kind, server) as url, twilio.serving() as api:
        project = live_project(url, api)
        idle = run_once(project, url, "live", senders)  # nothing due: the start-up alone
        with open_store(url) as store:
            enroll_many(store, count, datetime.now(UTC))
        wall, cpu = (
            a - b for a, b in zip(run_once(project, url, "live", senders), idle, strict=True)
        )
        assert sent(url) == count == twilio.count, (sent(url), count, twilio.count)
    return {
        "sends_per_s": count / (twilio.last - twilio.first),
        "wall_per_s": count / wall,
        "cpu_per_send_us": cpu / count * 1e6,
    }


def recorded(kind: str, server: str | None, channel: str, count: int) -> tuple[float, float]:
    """Steps/s and CPU µs/step of `count` SMS through a channel that answers at once, on 8
    senders: `nurture run --once`'s own loop, in this process (no start-up to subtract)."""
    with fresh_store(kind, server) as url:
        project_with(url, ONE_SEQUENCE)
        with open_store(url) as store:
            now = datetime.now(UTC)
            enroll_many(store, count, now)
            with open(os.devnull, "w") as null, redirect_stdout(null):  # the console's lines
                cpu, started = time.process_time(), time.monotonic()
                ran = cli_engine.run_once(
                    store, now, cli_engine.RunOptions(channel, EngineConfig(senders=8))
                )
                wall, cpu = time.monotonic() - started, time.process_time() - cpu
        assert ran == count == sent(url), (ran, count)
    return count / wall, cpu / count * 1e6


def rows(args: argparse.Namespace) -> Iterator[dict]:
    stores = ["sqlite"] + (["postgres"] if args.postgres else [])
    name = {"sqlite": "SQLite", "postgres": "Postgres"}
    for kind in stores:
        for senders in args.senders:
            count = max(senders * args.per_sender, 800)
            got = live(kind, args.postgres, senders, count, args.latency)
            ceiling = senders / args.latency
            result = (
                f"{got['sends_per_s']:,.0f} sends/s of {ceiling:,.0f} possible "
                f"({got['wall_per_s']:,.0f}/s over the command, start-up excluded; "
                f"CPU/send {got['cpu_per_send_us']:,.0f} µs)"
            )
            yield _row(f"live, {args.latency * 1000:.0f} ms", name[kind], senders, count, result)
        count = 8 * args.per_sender * 25
        (console, console_cpu), (outbox, outbox_cpu) = (
            recorded(kind, args.postgres, channel, count) for channel in ("console", "outbox")
        )
        result = (
            f"console (recorded per message) {console:,.0f} steps/s (CPU/step "
            f"{console_cpu:,.0f} µs), outbox (no record) {outbox:,.0f} steps/s "
            f"({outbox_cpu:,.0f} µs): {console / outbox:.0%} of the rate"
        )
        yield _row("record, 0 ms", name[kind], 8, count, result)


def _row(case: str, store: str, senders: int, count: int, result: str) -> dict:
    return {
        "case": case,
        "store": store,
        "senders": str(senders),
        "SMS": f"{count:,}",
        "result": result,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--senders", type=int, nargs="+", default=[8, 100])
    parser.add_argument("--per-sender", type=int, default=40, help="live: SMS per sender")
    parser.add_argument("--latency", type=float, default=0.2, help="the provider's answer, s")
    parser.add_argument("--postgres", default=os.environ.get("NURTURE_TEST_DATABASE_URL"))
    args = parser.parse_args()
    table = []
    for result in rows(args):
        table.append(result)
        print(f"  {result}", file=sys.stderr, flush=True)
    print(markdown(table))


if __name__ == "__main__":
    main()
