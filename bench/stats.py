"""Benchmark `nurture stats` over a big history: 1,000,000 enrollments, 5,000,000 executions.

    python bench/stats.py [--enrollments 1000000] [--postgres URL] [--only sqlite|postgres]

Each case: a fresh store (a SQLite file; a Postgres schema of its own, dropped afterwards) with
10 sequences of 5 steps in two versions, filled by bulk INSERT ... SELECT (no Python per row):
N leads, N enrollments over a year in every outcome, 5 executions per enrollment (sent,
skipped, failed, retried). Then `stats` for all sequences and `stats SEQUENCE` (per step) are
timed in process (the queries, median of 3) and as the `nurture stats --json` command (with
Python's start-up); `stats --by channel` (every message execution) once.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy
from sqlalchemy import text

from nurture.insights.report import StatsRequest, gather
from nurture.rules.periods import Window
from nurture.store.connect import normalize_url
from nurture.store.db import open_store

SEQUENCES, STEPS, EXECUTIONS_PER_ENROLLMENT = 10, 5, 5
BASE = "2025-01-01 00:00:00"


def sequence_yaml(number: int, delay: int) -> str:
    steps = "".join(
        f"  - name: Step {k}\n    action_type: {_action(k - 1)}\n"
        f"    action_config: {_config(k - 1)}\n    delay_hours: {delay if k > 1 else 0}\n"
        for k in range(1, STEPS + 1)
    )
    return f"name: Bench {number}\nsteps:\n{steps}"


def _action(k: int) -> str:
    return ("send_sms", "send_email", "send_whatsapp_message")[k % 3]


def _config(k: int) -> str:
    if k % 3 == 1:
        return '{subject: "Hi", body: "Hello {{ lead.name }}"}'
    return '{message: "Hi {{ lead.first_name }}"}'


def nurture(project: Path, url: str, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "nurture", "--database-url", url, *args]
    return subprocess.run(command, cwd=project, capture_output=True, text=True, check=True)


def make_project(url: str) -> Path:
    """10 sequences, applied twice (a changed delay), so each has versions 1 and 2."""
    project = Path(tempfile.mkdtemp(prefix="nurture-bench-stats-"))
    (project / "nurture.toml").write_text("")
    (project / "sequences").mkdir()
    for delay in (24, 48):
        for number in range(1, SEQUENCES + 1):
            path = project / "sequences" / f"bench-{number}.yaml"
            path.write_text(sequence_yaml(number, delay))
        nurture(project, url, "apply", "--yes")
    return project


# Times as each store keeps them: ISO text on SQLite, timestamptz on Postgres.
_SQLITE = {
    "series": "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :count)",
    "from": "FROM n",
    "enrolled": f"strftime('%Y-%m-%d %H:%M:%S', '{BASE}', '+' || (i % 365) || ' days', "
    f"'+' || (i % 86400) || ' seconds') || '.000000'",
    "plus_hours": "strftime('%Y-%m-%d %H:%M:%S', {t}, '+' || ({h}) || ' hours') || '.000000'",
    "plus_seconds": "strftime('%Y-%m-%d %H:%M:%S', {t}, '+' || ({s}) || ' seconds') || '.000000'",
}
_POSTGRES = {
    "series": "",
    "from": "FROM generate_series(1, :count) AS n(i)",
    "enrolled": f"timestamptz '{BASE}+00' + (i % 365) * interval '1 day' "
    "+ (i % 86400) * interval '1 second'",
    "plus_hours": "({t}) + ({h}) * interval '1 hour'",
    "plus_seconds": "({t}) + ({s}) * interval '1 second'",
}

_STATUS = (
    "CASE WHEN i % 100 < 10 THEN 'active' WHEN i % 100 < 60 THEN 'completed' "
    "WHEN i % 100 < 75 THEN 'converted' WHEN i % 100 < 85 THEN 'stopped' "
    "WHEN i % 100 < 90 THEN 'failed' ELSE 'completed' END"
)


def load(url: str, count: int) -> None:
    """Leads, enrollments and executions by INSERT ... SELECT, in one transaction each."""
    with open_store(url) as store, store.begin(immediate=True) as connection:
        sql = _SQLITE if connection.dialect.name == "sqlite" else _POSTGRES
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(
                "SET LOCAL session_replication_role = replica"
            )  # no FK checks
        connection.execute(text(_leads(sql)), {"count": count})
        connection.execute(text(_enrollments(sql)))
        connection.execute(text(_executions(sql)))


def _leads(sql: dict) -> str:
    return f"""{sql["series"]}
INSERT INTO lead (id, name, first_name, email, score, tags, fields, opted_out, created_at, updated_at)
SELECT i, 'Lead ' || i, 'Lead', 'lead' || i || '@example.com', i % 100, '[]', '{{}}', '[]',
       {sql["enrolled"]}, {sql["enrolled"]}
{sql["from"]}"""


def _enrollments(sql: dict) -> str:
    finished = sql["plus_hours"].format(t="l.created_at", h="1 + l.id % 240")
    next_run = sql["plus_hours"].format(t="l.created_at", h="24")
    status = _STATUS.replace("i %", "l.id %")
    return f"""
INSERT INTO enrollment (id, lead_id, sequence_id, version, status, step_id, next_run_at, attempts,
                        enrolled_at, updated_at, finished_at, exit_reason)
SELECT l.id, l.id, 1 + l.id % {SEQUENCES}, CASE WHEN l.id % 3 = 0 THEN 2 ELSE 1 END, {status},
       'step-2', CASE WHEN l.id % 100 < 10 THEN {next_run} END, 0, l.created_at, l.created_at,
       CASE WHEN l.id % 100 >= 10 THEN {finished} END, NULL
FROM lead l"""


def _executions(sql: dict) -> str:
    due = sql["plus_hours"].format(t="e.enrolled_at", h="k * 24")
    started = sql["plus_seconds"].format(t=due, s="e.id % 300")
    steps = " UNION ALL ".join(f"SELECT {k} AS k" for k in range(EXECUTIONS_PER_ENROLLMENT))
    return f"""
INSERT INTO execution (enrollment_id, lead_id, sequence_id, version, step_id, action_type, attempt,
                       status, due_at, started_at, finished_at, error)
SELECT e.id, e.lead_id, e.sequence_id, e.version, 'step-' || (k + 1),
       CASE k % 3 WHEN 0 THEN 'send_sms' WHEN 1 THEN 'send_email' ELSE 'send_whatsapp_message' END,
       1,
       CASE WHEN (e.id * 7 + k) % 100 < 85 THEN 'sent' WHEN (e.id * 7 + k) % 100 < 92 THEN 'skipped'
            WHEN (e.id * 7 + k) % 100 < 96 THEN 'failed' ELSE 'retry' END,
       {due}, {started}, {started},
       CASE WHEN (e.id * 7 + k) % 100 < 85 THEN NULL
            WHEN (e.id * 7 + k) % 100 < 89 THEN 'lead opted out of sms'
            WHEN (e.id * 7 + k) % 100 < 92 THEN 'conditions not met: ✗ tags: wants all of vip, lead has none'
            WHEN (e.id * 7 + k) % 100 < 96 THEN 'no email address'
            ELSE 'rate limited' END
FROM enrollment e CROSS JOIN ({steps}) AS s"""


def analyze(url: str) -> None:
    """Fresh planner statistics (and, on Postgres, the visibility map that index-only scans
    need), as autovacuum or `ANALYZE` leave them on a live store."""
    with open_store(url) as store:
        if store.engine.dialect.name == "sqlite":
            with store.begin(immediate=True) as connection:
                connection.exec_driver_sql("ANALYZE")
            return
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            for table in ("lead", "enrollment", "execution"):
                c.exec_driver_sql(f"VACUUM ANALYZE {table}")


def timed(url: str, request: StatsRequest, runs: int = 3) -> list[float]:
    with open_store(url) as store:
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            with store.session() as session:
                gather(session, request)
            times.append(time.perf_counter() - started)
    return times


def command_time(project: Path, url: str, *args: str) -> float:
    started = time.perf_counter()
    nurture(project, url, "stats", "--json", *args)
    return time.perf_counter() - started


def measure(url: str, count: int) -> dict:
    project = make_project(url)
    started = time.perf_counter()
    load(url, count)
    analyze(url)
    loaded = time.perf_counter() - started
    every = timed(url, StatsRequest(Window()))
    one = timed(url, StatsRequest(Window(), sequence="Bench 3"))
    channels = timed(url, StatsRequest(Window(), by="channel"), runs=1)
    result = {
        "database": url.split(":")[0], "enrollments": count,
        "executions": count * EXECUTIONS_PER_ENROLLMENT, "load_s": round(loaded, 1),
        "stats_all_s": round(statistics.median(every), 3),
        "stats_sequence_s": round(statistics.median(one), 3),
        "stats_by_channel_s": round(channels[0], 3),
        "command_all_s": round(command_time(project, url), 3),
        "command_sequence_s": round(command_time(project, url, "Bench 3"), 3),
    }  # fmt: skip
    shutil.rmtree(project, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enrollments", type=int, default=1_000_000)
    parser.add_argument("--postgres", default=os.environ.get("NURTURE_TEST_DATABASE_URL"))
    parser.add_argument("--only", choices=["sqlite", "postgres"], help="One store only.")
    args = parser.parse_args()
    if args.only != "postgres":
        folder = tempfile.mkdtemp(prefix="nurture-bench-stats-db-")
        try:
            print(json.dumps(measure(f"sqlite:///{folder}/bench.db", args.enrollments)), flush=True)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    if args.postgres and args.only != "sqlite":
        url, schema = postgres_schema(args.postgres)
        try:
            print(json.dumps(measure(url, args.enrollments)), flush=True)
        finally:
            drop_schema(args.postgres, schema)


def postgres_schema(server: str) -> tuple[str, str]:
    """A fresh schema on the server (so the benchmark never touches real data): URL, name."""
    schema = f"nurture_bench_stats_{uuid.uuid4().hex[:8]}"
    engine = sqlalchemy.create_engine(normalize_url(server), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    engine.dispose()
    url = normalize_url(server).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False), schema


def drop_schema(server: str, schema: str) -> None:
    """The benchmark's schema goes away with its data."""
    engine = sqlalchemy.create_engine(normalize_url(server), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    engine.dispose()


if __name__ == "__main__":
    main()
