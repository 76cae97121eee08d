"""Benchmark lead ingestion over HTTP: leads/s and latency of `POST /api/leads` on `nurture serve`.

    python bench/api.py [--leads 20000] [--connections 32] [--workers 1] [--postgres URL]

A fresh project (SQLite unless --postgres) with one sequence on the funnel `bench`, a token
with the ingest scope, and `nurture serve` started as a process on loopback. The load
generator keeps C keep-alive connections busy (each sends its next lead when the answer
comes), written on raw asyncio streams so that it costs the server's two shared cores
little. Every lead is unique. Reported: leads/s, latency p50/p99/max, and the check that
every lead was stored and enrolled (answers and the store both).
"""

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy
from sqlalchemy import func, select

from nurture.store.connect import engine_for, normalize_url
from nurture.store.tables import Enrollment, Lead

sys.path.insert(0, str(Path(__file__).parent))  # bench/baseline.py, run as a script or not
from baseline import DEFAULT, baseline, codes, load_average  # noqa: E402

SEQUENCE = """\
name: Bench Welcome
funnels: [bench]
trigger_conditions: {lead_score: {min: 0, max: 100}}
steps:
  - name: Hello
    action_type: send_sms
    action_config: {message: "Hi {{ lead.first_name }}, welcome!"}
  - name: Follow up
    action_type: send_email
    action_config: {subject: "How is it going?", body: "Hello {{ lead.name }}"}
    delay_days: 2
"""


def nurture(project: Path, url: str, *args: str, **popen) -> subprocess.Popen:
    command = [sys.executable, "-m", "nurture", "--database-url", url, *args]
    return subprocess.Popen(command, cwd=project, **popen)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(
    project: Path, url: str, workers: int, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen, int]:
    port = free_port()
    args = ("serve", "--port", str(port), "--workers", str(workers), "--no-access-log")
    server = nurture(project, url, *args, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as answer:
                if answer.status == 200:
                    return server, port
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("nurture serve did not answer /healthz within 30 s")


def request(port: int, token: str, number: int) -> bytes:
    body = json.dumps(
        {
            "funnel": "bench",
            "name": f"Bench Lead {number}",
            "email": f"lead{number}@bench.example.com",
            "leadScore": number % 101,
            "leadSource": "Web Form",
        }
    ).encode()
    head = (
        f"POST /api/leads HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def connection(port: int, token: str, numbers: list[int], results: list) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for number in numbers:
        started = time.perf_counter()
        writer.write(request(port, token, number))
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        body = json.loads(await reader.readexactly(length))
        results.append((time.perf_counter() - started, status, body))
    writer.close()


async def load(port: int, token: str, leads: range, connections: int) -> tuple[float, list]:
    results: list = []
    shares = [list(leads[start::connections]) for start in range(connections)]
    started = time.perf_counter()
    await asyncio.gather(*(connection(port, token, share, results) for share in shares))
    return time.perf_counter() - started, results


def measure(
    url: str, leads: int, connections: int, workers: int, env: dict[str, str] | None = None
) -> dict:
    """One run on a fresh store, by `env`'s code (a baseline's) or this one's."""
    project = Path(tempfile.mkdtemp(prefix="nurture-bench-api-"))
    (project / "nurture.toml").write_text("")
    (project / "sequences").mkdir()
    (project / "sequences" / "bench.yaml").write_text(SEQUENCE)
    quiet = {"stderr": subprocess.DEVNULL, "env": env}
    for step in (("db", "upgrade"), ("apply", "--yes")):  # Postgres is not migrated by apply
        assert nurture(project, url, *step, stdout=subprocess.DEVNULL, **quiet).wait() == 0
    made = nurture(project, url, "tokens", "create", "bench", "--scope", "ingest",
                   stdout=subprocess.PIPE, **quiet)  # fmt: skip
    token = made.communicate()[0].decode().strip()
    server, port = start_server(project, url, workers, env)
    try:
        asyncio.run(load(port, token, range(leads, leads + 200), connections))  # warm up
        cpu = cpu_seconds(server.pid)
        elapsed, results = asyncio.run(load(port, token, range(leads), connections))
        cpu = cpu_seconds(server.pid) - cpu
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(project, ignore_errors=True)
    return report(url, leads, connections, workers, elapsed, results) | {
        "server_cpu_ms_per_lead": round(cpu / leads * 1000, 3),
        "load": load_average(),
    }


def cpu_seconds(pid: int) -> float:
    """CPU time of the server and its worker processes (Linux /proc), in seconds."""
    pids = [pid, *map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split())]
    ticks = 0
    for each in pids:
        fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def report(url, leads, connections, workers, elapsed, results) -> dict:  # noqa: ANN001
    latencies = sorted(seconds for seconds, _, _ in results)
    good = [body for _, status, body in results if status == 201 and body.get("sequence")]
    with engine_for(url) as engine, engine.begin() as connection:  # as the code run left it
        stored = connection.execute(select(func.count()).select_from(Lead)).scalar_one()
        enrolled = connection.execute(select(func.count()).select_from(Enrollment)).scalar_one()
    return {
        "store": url.split(":")[0].split("+")[0],
        "workers": workers,
        "connections": connections,
        "leads": leads,
        "leads_per_s": round(leads / elapsed),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 1),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 1),
        "max_ms": round(latencies[-1] * 1000, 1),
        "answered_enrolled": len(good),
        "stored_leads": stored,
        "stored_enrollments": enrolled,
        "every_lead_enrolled": len(good) == leads and stored == enrolled == leads + 200,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=20000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--postgres",
        default=os.environ.get("NURTURE_TEST_DATABASE_URL"),
        help="a Postgres server URL: also run there, in a schema of its own",
    )
    parser.add_argument("--baseline", default=DEFAULT,
                        help="the revision to compare with, in the same rounds ('' for none)")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=1, help="rounds of each code, alternating")
    args = parser.parse_args()
    results = []
    with baseline(args.baseline) as env:
        for _ in range(args.rounds):
            for label, code in codes(args.baseline, env).items():
                for store in ("sqlite", "postgres") if args.postgres else ("sqlite",):
                    with fresh_url(store, args.postgres) as url:
                        got = measure(url, args.leads, args.connections, args.workers, code)
                    results.append({"code": label} | got)
                    print(json.dumps(results[-1]), flush=True)
    sys.exit(0 if all(result["every_lead_enrolled"] for result in results) else 1)


@contextmanager
def fresh_url(store: str, server: str | None) -> Iterator[str]:
    """A fresh SQLite file (removed after), or a fresh schema on the Postgres server."""
    if store == "postgres" and server:
        with postgres_schema(server) as url:
            yield url
        return
    folder = tempfile.mkdtemp(prefix="nurture-bench-db-")
    try:
        yield f"sqlite:///{folder}/nurture.db"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def postgres_schema(server: str) -> Iterator[str]:
    """A fresh schema on the server, dropped afterwards: a benchmark never touches real data."""
    schema = f"nurture_bench_{uuid.uuid4().hex[:8]}"
    engine = sqlalchemy.create_engine(normalize_url(server), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = normalize_url(server).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with engine.connect() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        engine.dispose()


if __name__ == "__main__":
    main()
