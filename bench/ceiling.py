"""The raw-SQL ceiling of the engine: claim due rows, no-op, write their log rows, schedule the next.

    python bench/ceiling.py URL [--batch 500]

One worker process, straight on the driver (sqlite3 or psycopg, no SQLAlchemy, no nurture):
batch after batch, a transaction that claims up to --batch due enrollments (the engine's claim
statement: the partial due index, SKIP LOCKED on Postgres) and a transaction that writes their
execution rows and their next state (a step a week later) in one statement each, until nothing
is due. It follows the engine's protocol (the claim commits before the work), so what the
engine does beyond it is its own Python. Prints JSON: steps, CPU seconds of this process and
of its Postgres backend (when the server runs on this host).
"""

import argparse
import json
import os
import sqlite3
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

CLAIM = """
UPDATE enrollment
SET status = 'running', lease_owner = {mark}, lease_expires_at = {mark}, updated_at = {mark}
WHERE id IN (
    SELECT id FROM enrollment
    WHERE status = 'active' AND next_run_at <= {mark}
    ORDER BY next_run_at
    LIMIT {mark}{lock}
)
RETURNING id, lead_id, sequence_id, version, step_id, next_run_at, attempts + 1
"""
COLUMNS = "enrollment_id, lead_id, sequence_id, version, step_id, action_type, attempt, status, "
COLUMNS += "due_at, started_at, finished_at"
LOG_SQLITE = f"INSERT INTO execution ({COLUMNS}) VALUES (?, ?, ?, ?, ?, 'wait', ?, 'done', ?, ?, ?)"
NEXT_SQLITE = (
    "UPDATE enrollment SET status = 'active', step_id = ?, next_run_at = ?, attempts = 0, "
    "lease_owner = NULL, lease_expires_at = NULL, updated_at = ? "
    "WHERE id = ? AND status = 'running' AND lease_owner = ?"
)
LOG_POSTGRES = f"""
INSERT INTO execution ({COLUMNS})
SELECT e, l, s, v, st, 'wait', a, 'done', d, %(now)s, %(now)s
FROM unnest(%(e)b::int[], %(l)b::int[], %(s)b::int[], %(v)b::int[], %(st)b::text[],
            %(a)b::int[], %(d)b::timestamptz[]) AS v(e, l, s, v, st, a, d)
"""
NAMES = ("e", "l", "s", "v", "st", "d", "a")
"""The claim's columns, as the Postgres statements' arrays name them."""
NEXT_POSTGRES = """
UPDATE enrollment AS t SET status = 'active', step_id = v.st || '+', next_run_at = %(next)s,
    attempts = 0, lease_owner = NULL, lease_expires_at = NULL, updated_at = %(now)s
FROM unnest(%(e)b::int[], %(st)b::text[]) AS v(id, st)
WHERE t.id = v.id AND t.status = 'running' AND t.lease_owner = %(worker)s
"""


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (0 when it is not on this host)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sqlite_time(value: datetime) -> str:
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def run_sqlite(path: str, batch: int, worker: str) -> tuple[int, float]:
    """Batches until none is due on SQLite (WAL, BEGIN IMMEDIATE, as the store); steps, 0."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA busy_timeout = 5000")
    connection.execute("PRAGMA synchronous = NORMAL")
    claim, total = CLAIM.format(mark="?", lock=""), 0
    while True:
        now = datetime.now(UTC)
        stamp, later = sqlite_time(now), sqlite_time(now + timedelta(days=7))
        connection.execute("BEGIN IMMEDIATE")
        parameters = (worker, sqlite_time(now + timedelta(minutes=5)), stamp, stamp, batch)
        rows = connection.execute(claim, parameters).fetchall()
        connection.execute("COMMIT")
        if not rows:
            return total, 0.0
        # the no-op step; then its log row and the enrollment's next step
        log = [(*row[:5], row[6], row[5], stamp, stamp) for row in rows]
        nexts = [(f"{row[4]}+", later, stamp, row[0], worker) for row in rows]
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany(LOG_SQLITE, log)
        connection.executemany(NEXT_SQLITE, nexts)
        connection.execute("COMMIT")
        total += len(rows)


def run_postgres(url: str, batch: int, worker: str) -> tuple[int, float]:
    """Batches until none is due on Postgres; steps, CPU seconds of the backend."""
    import psycopg

    connection = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
    backend = connection.execute("SELECT pg_backend_pid()").fetchone()[0]
    connection.commit()
    server_before = cpu_seconds(backend)
    claim, total = CLAIM.format(mark="%s", lock="\n    FOR UPDATE SKIP LOCKED"), 0
    while True:
        now = datetime.now(UTC)
        with connection.transaction():
            connection.execute("SET LOCAL enable_bitmapscan = off")
            parameters = (worker, now + timedelta(minutes=5), now, now, batch)
            rows = connection.execute(claim, parameters).fetchall()
        if not rows:
            return total, cpu_seconds(backend) - server_before
        columns: dict[str, Any] = dict(zip(NAMES, map(list, zip(*rows, strict=True)), strict=True))
        with connection.transaction():
            connection.execute(LOG_POSTGRES, columns | {"now": now})
            later = {"next": now + timedelta(days=7), "now": now, "worker": worker}
            # planned for its parameters each time: the generic plan psycopg would prepare
            # after five runs joins against every row of the partial lease index, dead ones
            # included (46 µs of the server a step by the end of 20,000, against 8)
            parameters = {"e": columns["e"], "st": columns["st"]} | later
            connection.execute(NEXT_POSTGRES, parameters, prepare=False)
        total += len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="the store: sqlite:///path or postgresql+psycopg://...")
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    worker = f"ceiling:{os.getpid()}"
    started = time.process_time()
    if args.url.startswith("sqlite"):
        steps, server = run_sqlite(args.url.removeprefix("sqlite:///"), args.batch, worker)
    else:
        steps, server = run_postgres(args.url, args.batch, worker)
    cpu = time.process_time() - started
    json.dump({"steps": steps, "cpu_s": cpu, "server_s": server}, sys.stdout)


if __name__ == "__main__":
    main()
