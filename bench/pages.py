"""Benchmark the dashboard's pages over a big history: p50 and p99 of each page's answer.

    python bench/pages.py [--enrollments 100000] [--requests 30] [--postgres URL] [--only sqlite|postgres]

Each case: a fresh store filled as bench/stats.py fills it (10 sequences of 5 steps in two
versions, on one funnel; N leads and N enrollments over a year in every outcome, 5 executions
each), a dashboard token, then every page asked for once (`first`: the figures' snapshot
computed, see nurture/web/snapshots.py) and `--requests` times more, back to back (p50, p99;
stale snapshots are recomputed in the background meanwhile), through the app `nurture serve`
runs (in process: routing, the services' queries, the templates), signed in as an editor.
The issue's target: p99 under 300 ms with 1,000,000 enrollments.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parent))
from stats import (  # noqa: E402  (bench/stats.py: the same history as `nurture stats`' bench)
    SEQUENCES,
    analyze,
    drop_schema,
    load,
    nurture,
    postgres_schema,
    sequence_yaml,
)

from nurture.api.app import create_app  # noqa: E402
from nurture.settings import load_settings  # noqa: E402
from nurture.store.db import open_store  # noqa: E402
from nurture.store.tokens import create_token, dashboard_token  # noqa: E402
from nurture.web.signin import link_code  # noqa: E402

PAGES = (
    "/sequences",
    "/sequences?q=bench+3",
    "/funnels",
    "/analytics",
    "/analytics?sequence=Bench+3",
    "/leads",
    "/leads?q=lead+4242",
    "/leads/4242",
    "/inbox",
    "/activity",
)


def make_project(url: str) -> Path:
    """bench/stats.py's 10 sequences, offered by the website funnel, applied twice."""
    project = Path(tempfile.mkdtemp(prefix="nurture-bench-pages-"))
    (project / "nurture.toml").write_text("")
    (project / "sequences").mkdir()
    for delay in (24, 48):
        for number in range(1, SEQUENCES + 1):
            text = sequence_yaml(number, delay).replace(
                "steps:\n", "funnels: [website]\nsteps:\n", 1
            )
            (project / "sequences" / f"bench-{number}.yaml").write_text(text)
        nurture(project, url, "apply", "--yes")
    return project


def sign_in(client: TestClient, url: str) -> None:
    with open_store(url) as store, store.session() as session:
        create_token(session, "bench", ["dashboard:edit"], datetime.now(UTC))
        session.flush()
        code = link_code(dashboard_token(session, "bench"))
    page = client.get("/signin")
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text)
    assert nonce is not None
    answer = client.post(
        "/signin", data={"nonce": nonce.group(1), "code": code}, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text


def timed_get(client: TestClient, path: str) -> float:
    began = time.perf_counter()
    answer = client.get(path)
    took = time.perf_counter() - began
    assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
    return took


def percentile(times: list[float], share: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def measure(url: str, count: int, requests: int) -> dict:
    project = make_project(url)
    started = time.perf_counter()
    load(url, count)
    analyze(url)
    loaded = time.perf_counter() - started
    result: dict = {"database": url.split(":")[0], "enrollments": count, "load_s": round(loaded, 1)}
    with TestClient(create_app(load_settings(project, database_url=url))) as client:
        sign_in(client, url)
        for path in PAGES:
            first, *times = [timed_get(client, path) for _ in range(requests + 1)]
            result[path] = {
                "first_ms": round(first * 1000, 1),
                "p50_ms": round(statistics.median(times) * 1000, 1),
                "p99_ms": round(percentile(times, 0.99) * 1000, 1),
            }
    shutil.rmtree(project, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enrollments", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=30, help="Requests per page.")
    parser.add_argument("--postgres", default=os.environ.get("NURTURE_TEST_DATABASE_URL"))
    parser.add_argument("--only", choices=["sqlite", "postgres"], help="One store only.")
    args = parser.parse_args()
    if args.only != "postgres":
        folder = tempfile.mkdtemp(prefix="nurture-bench-pages-db-")
        try:
            url = f"sqlite:///{folder}/bench.db"
            print(json.dumps(measure(url, args.enrollments, args.requests)), flush=True)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    if args.postgres and args.only != "sqlite":
        url, schema = postgres_schema(args.postgres)
        try:
            print(json.dumps(measure(url, args.enrollments, args.requests)), flush=True)
        finally:
            drop_schema(args.postgres, schema)


if __name__ == "__main__":
    main()
