"""Benchmark delivery through the live channel with real `nurture run --once` processes, this
code side by side with a baseline revision's (bench/baseline.py); prints a Markdown table.

    python bench/delivery.py [--latency 0.2] [--postgres URL] [--baseline REV] [--quick]

Cases (each on a fresh store: a temp SQLite file, and a fresh schema when a Postgres server is
given with --postgres or NURTURE_TEST_DATABASE_URL):

- live: single-step SMS enrollments due now, sent by `nurture run --once --channel live` to a
  local server speaking Twilio's Messages API that answers each message after --latency
  seconds, over HTTP and over HTTPS (a trustme certificate): with the default settings, with
  `--in-flight 100`, and the baseline's default (8 senders) and `--senders 100`; on Postgres
  also two daemons at once. Sends/s is messages over the time from the provider's first request
  to its last answer; CPU/send is the daemons' CPU time (start-up excluded: a run with nothing
  due is subtracted) over the messages. N messages in flight cannot beat N / latency.
- record: 8,000 SMS through a channel that answers at once: console (not transactional, so each
  message is recorded `sending` just before its call and its outcome just after) against outbox
  (transactional: no record before, the completion writes the message). `nurture run --once`'s
  loop runs in this process, so its time has no start-up in it; steps/s and CPU per step of
  each, and the ratio: what the per-message record costs.

With --two-daemons R only the Postgres HTTP case of one daemon and of two at once, with the
default settings, this code and the baseline alternating R rounds: sends/s, CPU per send and
the ratio of two daemons to one (issue 14's target: 1.8).
"""

import argparse
import asyncio
import json
import os
import resource
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import chdir, contextmanager, redirect_stdout
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import baseline
import trustme
import uvloop
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
    201 with the message after `latency` seconds (keep-alive, as Twilio's SDK expects); over
    TLS when given a server context."""

    def __init__(self, latency: float, tls: ssl.SSLContext | None = None) -> None:
        self.latency, self.tls = latency, tls
        self.count = self.connections = 0
        self.first = self.last = 0.0
        self.loop = uvloop.new_event_loop()  # the provider's CPU is not the daemons' to share
        self.port = 0

    @contextmanager
    def serving(self) -> Iterator[str]:
        """Serve on 127.0.0.1 in a thread for the block; the base URL."""
        started = threading.Event()
        thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        thread.start()
        started.wait(10)
        try:
            scheme = "https" if self.tls else "http"
            yield f"{scheme}://localhost:{self.port}"
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            thread.join(10)

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            asyncio.start_server(self._client, "127.0.0.1", 0, backlog=1024, ssl=self.tls)
        )
        self.port = server.sockets[0].getsockname()[1]
        started.set()
        self.loop.run_forever()
        server.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                await reader.readexactly(_content_length(head))
                number = self._taken()
                await asyncio.sleep(self.latency)
                writer.write(_created(number))
                await writer.drain()
                self.last = time.monotonic()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    def _taken(self) -> int:
        self.count += 1
        if self.count == 1:
            self.first = time.monotonic()
        return self.count

    def reset(self) -> None:
        self.count = self.connections = 0


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


@dataclass(frozen=True)
class Code:
    """Which nurture runs: this tree's, or a baseline checkout's (its environment)."""

    name: str
    env: dict[str, str]
    flag: str  # how it is told the messages in flight: --in-flight, or the baseline's --senders


def live_project(url: str, api: str, env: dict[str, str] | None = None) -> Path:
    """A project whose [twilio] settings point at the local server, applied by `env`'s code."""
    project = project_with(url, ONE_SEQUENCE, env)
    (project / "nurture.toml").write_text(
        f'[twilio]\naccount_sid = "{ACCOUNT_SID}"\nsms_from = "+15550001111"\napi_url = "{api}"\n'
    )
    (project / ".env").write_text(f"NURTURE_TWILIO__AUTH_TOKEN={TOKEN}\n")
    return project


def run_once(
    project: Path, url: str, code: Code, in_flight: int | None, daemons: int = 1
) -> tuple[float, float]:
    """`daemons` × `nurture run --once --channel live` at once; wall time and CPU seconds."""
    command = nurture_command(url, "run", "--once", "--channel", "live")
    if in_flight is not None:
        command += [code.flag, str(in_flight)]
    cpu, started = children_cpu(), time.monotonic()
    procs = [
        subprocess.Popen(
            command, cwd=project, env=code.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        for _ in range(daemons)
    ]
    for proc in procs:
        _, err = proc.communicate()
        assert proc.returncode == 0, err.decode()[-3000:]
    return time.monotonic() - started, children_cpu() - cpu


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def sent(url: str) -> int:
    with open_store(url) as store, store.begin() as connection:
        query = select(func.count()).select_from(Execution).where(Execution.status == "sent")
        return connection.execute(query).scalar_one()


def live(
    kind: str,
    server: str | None,
    twilio: SlowTwilio,
    api: str,
    code: Code,
    in_flight: int | None,
    count: int,
    daemons: int = 1,
) -> dict:
    """`count` SMS through the live channel; sends/s, CPU per send, connections opened."""
    with fresh_store(kind, server) as url:
        project = live_project(url, api, code.env)
        idle = run_once(project, url, code, in_flight)  # nothing due: the start-up alone
        enroll(url, count, code.env)
        twilio.reset()
        wall, cpu = run_once(project, url, code, in_flight, daemons)
        assert sent(url) == count == twilio.count, (sent(url), count, twilio.count)
    return {
        "sends_per_s": count / (twilio.last - twilio.first),
        "cpu_per_send_us": (cpu - idle[1] * daemons) / count * 1e6,
        "connections": twilio.connections,
    }


ENROLL = """
import sys
from datetime import UTC, datetime
from nurture.store.db import open_store
from nurture.testing import enroll_many
with open_store(sys.argv[1]) as store:
    enroll_many(store, int(sys.argv[2]), datetime.now(UTC))
"""


def enroll(url: str, count: int, env: dict[str, str]) -> None:
    """`count` enrollments due now, written by `env`'s code (a baseline's store is its own)."""
    command = [sys.executable, "-c", ENROLL, url, str(count)]
    # run outside this tree: `-c` puts the working directory first on sys.path
    subprocess.run(command, env=env, check=True, capture_output=True, cwd=tempfile.gettempdir())


def recorded(kind: str, server: str | None, channel: str, count: int) -> tuple[float, float]:
    """Steps/s and CPU µs/step of `count` SMS through a channel that answers at once, with the
    default settings: `nurture run --once`'s own loop, in this process (no start-up)."""
    with fresh_store(kind, server) as url:
        project = project_with(url, ONE_SEQUENCE)
        with open_store(url) as store, chdir(project):  # the settings run_once reads
            now = datetime.now(UTC)
            enroll_many(store, count, now)
            with open(os.devnull, "w") as null, redirect_stdout(null):  # the console's lines
                cpu, started = time.process_time(), time.monotonic()
                options = cli_engine.RunOptions(channel, EngineConfig())
                ran = cli_engine.run_once(store, now, options)
                wall, cpu = time.monotonic() - started, time.process_time() - cpu
        assert ran == count == sent(url), (ran, count)
    return count / wall, cpu / count * 1e6


@contextmanager
def certificates() -> Iterator[tuple[ssl.SSLContext, str]]:
    """A local CA and a certificate for localhost: the server's context, the CA's file."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    with tempfile.NamedTemporaryFile(suffix=".pem") as pem:
        ca.cert_pem.write_to_path(pem.name)
        yield context, pem.name


def cases(quick: bool) -> list[tuple[str, int | None, int]]:
    """(code, in flight or None for the default, messages) per live case."""
    now = [("now", None, 8000), ("now", 100, 2000)]
    return now + ([] if quick else [("baseline", None, 800), ("baseline", 100, 2000)])


def rows(args: argparse.Namespace) -> Iterator[dict]:
    stores = ["sqlite"] + (["postgres"] if args.postgres else [])
    name = {"sqlite": "SQLite", "postgres": "Postgres"}
    with certificates() as (server_tls, ca_file), baseline.baseline(args.baseline) as old:
        client = {"SSL_CERT_FILE": ca_file, "REQUESTS_CA_BUNDLE": ca_file}
        codes = {
            "now": Code("this code", os.environ | client, "--in-flight"),
            "baseline": Code(f"baseline {args.baseline}", (old or {}) | client, "--senders"),
        }
        args.quick = args.quick or old is None  # --baseline '': this code only
        for tls in (None, server_tls):
            twilio = SlowTwilio(args.latency, tls)
            with twilio.serving() as api:
                for kind in stores:
                    runs = cases(args.quick or tls is not None and kind == "postgres")
                    for which, in_flight, count in runs:
                        yield live_row(args, twilio, api, codes[which], kind, in_flight, count)
                    if kind == "postgres" and tls is None:
                        yield live_row(args, twilio, api, codes["now"], kind, None, 8000, 2)
        for kind in stores:
            yield record_row(args, name[kind], kind)


def two_daemon_rows(args: argparse.Namespace) -> Iterator[dict]:
    """One daemon and two on Postgres over HTTP, this code and the baseline alternating."""
    assert args.postgres, "--two-daemons needs a Postgres server (--postgres)"
    with baseline.baseline(args.baseline) as old:
        codes = [Code("this code", dict(os.environ), "--in-flight")]
        codes += [Code(f"baseline {args.baseline}", old, "--in-flight")] if old else []
        twilio = SlowTwilio(args.latency)
        with twilio.serving() as api:
            for number in range(1, args.two_daemons + 1):
                for code in codes:
                    one, two = (
                        live("postgres", args.postgres, twilio, api, code, None, 8000, daemons)
                        for daemons in (1, 2)
                    )
                    result = (
                        f"1 daemon {one['sends_per_s']:,.0f} sends/s "
                        f"({one['cpu_per_send_us']:,.0f} µs), 2 daemons "
                        f"{two['sends_per_s']:,.0f} ({two['cpu_per_send_us']:,.0f} µs): "
                        f"{two['sends_per_s'] / one['sends_per_s']:.2f}x"
                    )
                    yield {
                        "case": f"live HTTP, {args.latency * 1000:.0f} ms, round {number}",
                        "store": "Postgres",
                        "code": code.name,
                        "SMS": "8,000",
                        "result": result,
                        "load": baseline.load_average(),
                    }


def live_row(
    args: argparse.Namespace,
    twilio: SlowTwilio,
    api: str,
    code: Code,
    kind: str,
    in_flight: int | None,
    count: int,
    daemons: int = 1,
) -> dict:
    got = live(kind, args.postgres, twilio, api, code, in_flight, count, daemons)
    scheme = "HTTPS" if twilio.tls else "HTTP"
    flight = f"{code.flag} {in_flight}" if in_flight else "default"
    result = (
        f"{got['sends_per_s']:,.0f} sends/s, CPU/send {got['cpu_per_send_us']:,.0f} µs, "
        f"{got['connections']:,} connections"
    )
    return {
        "case": f"live {scheme}, {args.latency * 1000:.0f} ms",
        "store": {"sqlite": "SQLite", "postgres": "Postgres"}[kind],
        "code": code.name,
        "in flight": flight + (f", {daemons} daemons" if daemons > 1 else ""),
        "SMS": f"{count:,}",
        "result": result,
    }


def record_row(args: argparse.Namespace, store: str, kind: str) -> dict:
    count = 8000
    (console, console_cpu), (outbox, outbox_cpu) = (
        recorded(kind, args.postgres, channel, count) for channel in ("console", "outbox")
    )
    result = (
        f"console (recorded per message) {console:,.0f} steps/s (CPU/step "
        f"{console_cpu:,.0f} µs), outbox (no record) {outbox:,.0f} steps/s "
        f"({outbox_cpu:,.0f} µs): {console / outbox:.0%} of the rate"
    )
    return {
        "case": "record, 0 ms",
        "store": store,
        "code": "this code",
        "in flight": "default",
        "SMS": f"{count:,}",
        "result": result,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2, help="the provider's answer, s")
    parser.add_argument("--postgres", default=os.environ.get("NURTURE_TEST_DATABASE_URL"))
    parser.add_argument("--baseline", default=baseline.DEFAULT, help="the revision to compare")
    parser.add_argument("--quick", action="store_true", help="this code's cases only")
    parser.add_argument(
        "--two-daemons", type=int, default=0, metavar="R", help="only 1 and 2 daemons, R rounds"
    )
    args = parser.parse_args()
    table = []
    print(f"load average {baseline.load_average()}", file=sys.stderr)
    for result in two_daemon_rows(args) if args.two_daemons else rows(args):
        table.append(result)
        print(f"  {result}", file=sys.stderr, flush=True)
    print(markdown(table))
    print(f"\nload average at the end: {baseline.load_average()}")


if __name__ == "__main__":
    main()
