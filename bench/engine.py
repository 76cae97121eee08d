"""Benchmark the engine: steps/s and lag of real `nurture run` daemons over N due enrollments.

    python bench/engine.py --enrollments 100000 [--postgres URL] [--daemons 1 2]

Each case: a fresh store with one single-step SMS sequence (outbox channel), N enrollments all
due now, D daemons started as processes; measured until nothing is due. Reported: steps/s,
lag p50/p99 between due time and execution start, peak RSS of a daemon.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy
from sqlalchemy import func, select

from nurture.store.db import open_store
from nurture.store.engine import normalize_url
from nurture.store.tables import Enrollment, Execution
from nurture.testing import enroll_many

SEQUENCE = """\
name: Bench
steps:
  - name: Text
    action_type: send_sms
    action_config: {message: "Hi {{ lead.first_name }}, see you at the gym!"}
"""


def nurture(project: Path, url: str, *args: str, **popen) -> subprocess.Popen:
    command = [sys.executable, "-m", "nurture", "--database-url", url, *args]
    return subprocess.Popen(
        command, cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **popen
    )


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure(url: str, enrollments: int, daemons: int) -> dict:
    project = Path(tempfile.mkdtemp(prefix="nurture-bench-"))
    (project / "nurture.toml").write_text("")
    (project / "sequences").mkdir()
    (project / "sequences" / "bench.yaml").write_text(SEQUENCE)
    assert nurture(project, url, "apply", "--yes").wait() == 0
    with open_store(url) as store:
        enroll_many(store, enrollments, datetime.now(UTC))
        started = time.perf_counter()
        procs = [nurture(project, url, "run", "--poll", "0.2", "--channel", "outbox", "--batch", "500")
                 for _ in range(daemons)]  # fmt: skip
        rss = 0.0
        while _due(store):
            rss = max([rss, *(peak_rss_mb(p.pid) for p in procs)])
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        p50, p99 = _lag(store)
    return {"database": url.split(":")[0], "enrollments": enrollments, "daemons": daemons,
            "steps_per_s": round(enrollments / elapsed), "lag_p50_s": p50, "lag_p99_s": p99,
            "peak_rss_mb": round(rss, 1)}  # fmt: skip


def _due(store) -> int:
    with store.begin() as connection:
        return connection.execute(
            select(func.count())
            .select_from(Enrollment)
            .where(Enrollment.status.in_(("active", "running")))
        ).scalar_one()


def _lag(store) -> tuple[float, float]:
    with store.begin() as connection:
        rows = connection.execute(select(Execution.started_at, Execution.due_at)).all()
    lags = sorted((started - due).total_seconds() for started, due in rows if started)
    if not lags:
        return 0.0, 0.0
    return round(lags[len(lags) // 2], 3), round(lags[int(len(lags) * 0.99) - 1], 3)


def postgres_schema(server: str) -> str:
    """A fresh schema on the server, so a benchmark never touches real data."""
    schema = f"nurture_bench_{uuid.uuid4().hex[:8]}"
    engine = sqlalchemy.create_engine(normalize_url(server), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    return (
        normalize_url(server)
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enrollments", type=int, default=100_000)
    parser.add_argument("--postgres", default=os.environ.get("NURTURE_TEST_DATABASE_URL"))
    parser.add_argument("--daemons", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    cases = [(f"sqlite:///{tempfile.mkdtemp()}/bench.db", 1)]
    if args.postgres:
        cases += [(postgres_schema(args.postgres), n) for n in args.daemons]
    for url, daemons in cases:
        print(json.dumps(measure(url, args.enrollments, daemons)), flush=True)


if __name__ == "__main__":
    main()
