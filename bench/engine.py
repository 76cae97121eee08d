"""Benchmark the engine and the import with real `nurture` processes; prints a Markdown table.

    python bench/engine.py --enrollments 100000 [--postgres URL] [--cases throughput lag scale links import]

Cases (each on a fresh store: a temp SQLite file, or a fresh schema when a Postgres server is
given with --postgres or NURTURE_TEST_DATABASE_URL):

- throughput: N single-step SMS enrollments (outbox channel) all due now, D daemons
  (SQLite: 1; Postgres: each of --daemons); steps/s from the first claim to the last step.
  Next to it, on another fresh store of N due enrollments, the raw-SQL ceiling (bench/ceiling.py:
  claim, no-op, log row, next step, in batches of 500, with D processes) and the engine's
  fraction of it: in steps/s, and by CPU per step (the ceiling's over the engine's, Postgres
  backends included: what a shared machine distorts least); --pairs alternates the two that
  many times (medians). Against the ceiling the sequence has a second step a week later, so
  each step schedules the next as the ceiling's do; --engine-baseline REV runs that revision's
  daemons in the same rounds (a temp git worktree, bench/baseline.py).
- caps: the throughput case with [caps] configured (messages 2/day and 5/week, sms 1/day,
  min_gap 4h: every step's lead counted in its cap ledger row) beside the same case without,
  alternating --pairs times in the same run (medians); the ratio is what the caps cost.
  With --caps-ledger every lead has a ledger row already (an SMS two days before, which
  counts towards 5/week and holds nothing): the path of a lead's second message.
- lag: one daemon running while enrollments fall due at a steady --rate per second for
  --seconds; lag = execution time (the claim of its batch) minus due time, p50/p99/max.
- scale: steps/s of --scale-due due steps in a store of that many enrollments, then in a store
  of --scale-to enrollments (the rest due next week); the ratio, and the daemon's peak RSS.
- links: the throughput of a single-step SMS sequence whose message holds two web addresses,
  with `track_links: true` (each address becomes a signed /c/ link, the links kept with the
  execution) against the same sequence with `track_links: false`, on the same settings
  (`[api] public_url` and a link secret), alternating --pairs times, each on a fresh store.
- variants: the throughput case (one daemon) of a step with two variants (an A/B test of its
  text, each lead's variant drawn by hash as the step runs) beside the same step without,
  alternating --pairs times on fresh stores (medians): what an experiment costs the engine.
- import: `nurture leads import` of a generated CSV of --leads leads (name, email, phone,
  score, temperature, source, a tag, a custom field) through a funnel with two sequences
  assigned; leads/s is rows over the command's wall time (process start included).

Peak RSS is the daemon's high-water mark (VmHWM). A failed case stops its daemons; the temp
projects and stores are removed whatever happens.
"""

import argparse
import csv
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy
from sqlalchemy import make_url, select, text

from nurture.store import bulk
from nurture.store.connect import engine_for, normalize_url
from nurture.store.db import Store, open_store
from nurture.store.tables import Execution
from nurture.testing import enroll_many

sys.path.insert(0, str(Path(__file__).parent))  # bench/baseline.py, run as a script or not
from baseline import DEFAULT, baseline, codes, load_average  # noqa: E402

TEXT = """\
name: {name}
funnels: [Website]
trigger_conditions: {{lead_temperature: [{temperatures}]}}
steps:
  - name: Text
    action_type: send_sms
    action_config: {{message: "Hi {{{{ lead.first_name }}}}, see you at the gym!"}}
"""
ONE_SEQUENCE = {"bench.yaml": TEXT.format(name="Bench", temperatures="Warm, Hot, Cold")}
FOLLOW_UP = """\
  - name: Follow-up
    action_type: send_sms
    delay_days: 7
    action_config: {message: "{{ lead.first_name }}, how was the gym?"}
"""
NEXT_STEP = {"bench.yaml": ONE_SEQUENCE["bench.yaml"] + FOLLOW_UP}
"""Against the ceiling: each step schedules the next (a week later), as the ceiling does."""
A_B_TEST = {
    "bench.yaml": """\
name: Bench
funnels: [Website]
steps:
  - name: Text
    action_type: send_sms
    variants:
      - {id: a, weight: 50, action_config: {message: "Hi {{ lead.first_name }}, see you at the gym!"}}
      - {id: b, weight: 50, action_config: {message: "{{ lead.first_name }}, the gym awaits!"}}
"""
}
TWO_SEQUENCES = {
    "warm.yaml": TEXT.format(name="Warm welcome", temperatures="Warm, Hot"),
    "cold.yaml": TEXT.format(name="Cold welcome", temperatures="Cold"),
}
LINKED = """\
name: Bench
track_links: {track}
steps:
  - name: Text
    action_type: send_sms
    action_config:
      message: "Hi {{{{ lead.first_name }}}}: your plan https://coach.example.com/plan?week=1, book at https://coach.example.com/book"
"""
TRACKING = {
    "nurture.toml": '[api]\npublic_url = "https://go.example.com"\n',
    ".env": "NURTURE_ENGAGEMENT__SECRET=bench-link-secret\n",
}
CAPS = '[caps]\nmessages = "2/day, 5/week"\nsms = "1/day"\nmin_gap = "4h"\n'
"""The caps case's settings: one message a lead, so each is counted and none is deferred."""
IDLE = (
    "SELECT 1 FROM enrollment WHERE status = 'active' AND next_run_at <= :until LIMIT 1",
    "SELECT 1 FROM enrollment WHERE status = 'running' AND lease_expires_at >= :since LIMIT 1",
)


# Stores and projects


@contextmanager
def fresh_store(kind: str, server: str | None) -> Iterator[str]:
    """A URL of an empty store: a temp SQLite file, or a new schema on the Postgres server."""
    if kind == "sqlite":
        folder = tempfile.mkdtemp(prefix="nurture-bench-")
        try:
            yield f"sqlite:///{folder}/bench.db"
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    schema = f"nurture_bench_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(normalize_url(server), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        query = {"options": f"-csearch_path={schema}", "application_name": schema}
        yield normalize_url(server).update_query_dict(query).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


PROJECTS: list[Path] = []
"""The temp projects made so far, removed when the run ends (main), failed or not."""


def project_with(
    url: str,
    sequences: dict[str, str],
    env: dict[str, str] | None = None,
    settings: str = "",
    files: dict[str, str] | None = None,
) -> Path:
    """A temp project folder with these sequence files (and nurture.toml `settings`, other
    `files` such as .env), applied to the store (by `env`'s code)."""
    project = Path(tempfile.mkdtemp(prefix="nurture-bench-project-"))
    PROJECTS.append(project)
    (project / "nurture.toml").write_text(settings)
    for name, body in (files or {}).items():
        (project / name).write_text(body)
    (project / "sequences").mkdir()
    for name, body in sequences.items():
        (project / "sequences" / name).write_text(body)
    for step in (("db", "upgrade"), ("apply", "--yes")):  # Postgres is not migrated by apply
        subprocess.run(
            nurture_command(url, *step), cwd=project, check=True, capture_output=True, env=env
        )
    return project


def remove_projects() -> None:
    while PROJECTS:
        shutil.rmtree(PROJECTS.pop(), ignore_errors=True)


def nurture_command(url: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "nurture", "--database-url", url, *args]


# Daemons


@contextmanager
def daemons_running(
    project: Path, url: str, count: int, env: dict[str, str] | None = None
) -> Iterator[list[subprocess.Popen]]:
    """`nurture run` processes (outbox channel, `env`'s code), each logging to a file (a pipe
    would fill up); whatever happens in the block, none outlives it."""
    procs: list[subprocess.Popen] = []
    try:
        for n in range(count):
            log = open(project / f"daemon-{n}.log", "w")  # noqa: SIM115 - closed with the process
            command = nurture_command(url, "run", "--channel", "outbox", "--log-format", "json")
            procs.append(subprocess.Popen(command, cwd=project, stdout=log, stderr=log, env=env))
        deadline = time.monotonic() + 60
        logs = [project / f"daemon-{n}.log" for n in range(count)]
        while not all('"started"' in log.read_text() for log in logs):
            assert time.monotonic() < deadline, "the daemons did not start"
            assert all(proc.poll() is None for proc in procs), "a daemon exited at start"
            time.sleep(0.05)
        yield procs
    finally:
        for proc in procs:
            end(proc)


def end(proc: subprocess.Popen) -> None:
    """Stop a process still running: SIGTERM, then SIGKILL after 30 s."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def stop_daemons(procs: list[subprocess.Popen]) -> tuple[float, float]:
    """Stop the daemons (SIGTERM); the highest peak RSS among them (MB), their CPU seconds."""
    rss = max(peak_rss_mb(proc.pid) for proc in procs)
    cpu = sum(cpu_seconds(proc.pid) for proc in procs)
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        proc.wait(timeout=120)
    return rss, cpu


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_cpu(store: Store) -> dict[int, float]:
    """CPU seconds so far of each Postgres backend serving this store's daemons (same host)."""
    name = make_url(store.url).query.get("application_name")
    if not name:
        return {}
    sql = "SELECT pid FROM pg_stat_activity WHERE application_name = :name AND pid <> pg_backend_pid()"
    with store.begin() as connection:
        pids = connection.execute(text(sql), {"name": name}).scalars().all()
    seconds = {}
    for pid in pids:
        with suppress(OSError):  # gone, or the server runs on another host
            seconds[pid] = cpu_seconds(pid)
    return seconds


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_idle(store: Store, until: datetime, timeout: float = 1800) -> float:
    """Wait until nothing due by `until` is left to run; the wall time (epoch) it was seen idle."""
    deadline = time.monotonic() + timeout
    queries = [text(sql) for sql in IDLE]
    since = datetime.now(UTC) - timedelta(days=1)
    while True:
        with store.begin() as connection:
            busy = any(
                connection.execute(query, {"until": until, "since": since}).first()
                for query in queries
            )
        if not busy:
            return time.time()
        assert time.monotonic() < deadline, "the daemons did not finish"
        time.sleep(0.05)


def executions(store: Store) -> list[tuple[datetime, datetime]]:
    with store.begin() as connection:
        return connection.execute(select(Execution.started_at, Execution.due_at)).all()


# Cases


def throughput(
    url: str,
    due: int,
    daemons: int,
    later: int = 0,
    rounds: int = 1,
    settings: str = "",
    sequences: dict[str, str] = ONE_SEQUENCE,
    files: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
    ledger: bool = False,
) -> dict:
    """`due` steps due now (and `later` enrollments due next week) run by `daemons` daemons
    (with nurture.toml `settings`, of `sequences`, by `env`'s code; with `ledger` each lead's
    cap ledger row made first); with several rounds the same steps are made due again, and
    the best round counts."""
    project = project_with(url, sequences, env, settings=settings, files=files)
    best: dict = {}
    with store_as_left(url) as store:  # a baseline's project made it at its own revision
        now = datetime.now(UTC)
        enroll_many(store, due, now)
        if ledger:
            sent_before(store, now - timedelta(days=2))
        if later:
            enroll_many(store, later, now + timedelta(days=7))
        for number in range(rounds):
            if number:
                now = rearm(store)
            got = one_round(store, project, url, due, daemons, now, env)
            if got["steps_per_s"] > best.get("steps_per_s", 0):
                best = got
            best["peak_rss_mb"] = max(best["peak_rss_mb"], got["peak_rss_mb"])
    return best


@contextmanager
def store_as_left(url: str) -> Iterator[Store]:
    """The store as the code that made it left it: not migrated to this code's revision."""
    with engine_for(url) as engine:
        yield Store(url, engine)


def one_round(
    store: Store,
    project: Path,
    url: str,
    due: int,
    daemons: int,
    now: datetime,
    env: dict[str, str] | None = None,
) -> dict:
    with daemons_running(project, url, daemons, env) as procs:
        idle_cpu = sum(cpu_seconds(proc.pid) for proc in procs)  # start-up: imports, settings
        idle_server = server_cpu(store)
        done = wait_idle(store, now)
        busy_server = server_cpu(store)
        rss, cpu = stop_daemons(procs)
    server = sum(busy_server[pid] - idle_server.get(pid, 0) for pid in busy_server)
    rows = executions(store)
    assert len(rows) == due, f"{len(rows)} steps ran, {due} were due"
    first = min(started for started, _ in rows).timestamp()
    steps_per_s = due / (done - first)
    return {
        "steps_per_s": steps_per_s,
        "peak_rss_mb": rss,
        "cpu_s": cpu - idle_cpu,
        "server_s": server,
    }


def sent_before(store: Store, at: datetime) -> None:
    """Every lead's cap ledger row, holding one SMS sent `at` from another sequence."""
    entry = json.dumps([[at.timestamp(), "sms", 0, "earlier", "Another sequence"]])
    with store.begin(immediate=True) as connection:
        connection.execute(text("INSERT INTO lead_cap (id, sent) SELECT id, :sent FROM lead"),
                           {"sent": entry})  # fmt: skip


def ceiling(url: str, due: int, workers: int) -> dict:
    """The raw-SQL ceiling (bench/ceiling.py) over the same `due` steps, with `workers` processes."""
    project_with(url, ONE_SEQUENCE)  # the same schema and sequence
    command = [sys.executable, str(Path(__file__).with_name("ceiling.py")), url]
    with open_store(url) as store:
        enroll_many(store, due, datetime.now(UTC))
        procs = [
            subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(workers)
        ]
        try:
            outputs = [json.loads(proc.communicate(timeout=1800)[0]) for proc in procs]
        finally:
            for proc in procs:
                end(proc)
        done = time.time()
        rows = executions(store)
    assert sum(out["steps"] for out in outputs) == len(rows) == due, f"{len(rows)} of {due} ran"
    first = min(started for started, _ in rows).timestamp()
    return {
        "steps_per_s": due / (done - first),
        "cpu_s": sum(out["cpu_s"] for out in outputs),
        "server_s": sum(out["server_s"] for out in outputs),
    }


def rearm(store: Store) -> datetime:
    """The completed enrollments due again now, their log cleared; the new due time."""
    now = datetime.now(UTC)
    with store.begin(immediate=True) as connection:
        connection.execute(text("DELETE FROM outbox_message"))
        connection.execute(text("DELETE FROM execution"))
        connection.execute(
            text("UPDATE enrollment SET status = 'active', next_run_at = :now, finished_at = NULL, "
                 "exit_reason = NULL WHERE status = 'completed'"),
            {"now": bulk.sqlite_time(now) if store.url.startswith("sqlite") else now},
        )  # fmt: skip
    return now


def lag(url: str, rate: int, seconds: int, warmup: float = 5) -> dict:
    """One daemon while `rate` steps a second fall due for `seconds`, starting `warmup` s from now.

    The steps are enrolled before the daemon starts, so it knows when the first is due (a step
    enrolled while a daemon sleeps waits up to its --poll interval, 5 s by default).
    """
    project = project_with(url, ONE_SEQUENCE)
    count = rate * seconds
    with open_store(url) as store:
        start = datetime.now(UTC) + timedelta(seconds=warmup)
        enroll_many(store, count, start, spacing=timedelta(seconds=1) / rate)
        with daemons_running(project, url, 1) as procs:
            assert datetime.now(UTC) < start, f"the daemon took longer than {warmup} s to start"
            end = start + timedelta(seconds=seconds)
            time.sleep(max((end - datetime.now(UTC)).total_seconds(), 0))
            wait_idle(store, end)
            rss, _ = stop_daemons(procs)
        rows = executions(store)
    assert len(rows) == count, f"{len(rows)} steps ran, {count} were due"
    lags = sorted((started - due).total_seconds() for started, due in rows)
    return {
        "lag_p50_s": lags[len(lags) // 2],
        "lag_p99_s": lags[int(len(lags) * 0.99) - 1],
        "lag_max_s": lags[-1],
        "peak_rss_mb": rss,
    }


def import_leads(url: str, leads: int, env: dict[str, str] | None = None) -> dict:
    """`nurture leads import` of a generated CSV through a funnel with two sequences (run by
    `env`'s code: a baseline's, or this one's)."""
    project = project_with(url, TWO_SEQUENCES, env)
    path = project / "leads.csv"
    write_leads(path, leads)
    cpu_before = children_cpu()
    started = time.perf_counter()
    command = nurture_command(url, "leads", "import", str(path), "--funnel", "website", "--json")
    with engine_for(url) as engine:  # as it is: a baseline's store is at its own revision
        proc = subprocess.Popen(command, cwd=project, stdout=subprocess.PIPE, text=True, env=env)
        server = watch_server(Store(url, engine), proc)
        out, _ = proc.communicate()
    elapsed = time.perf_counter() - started
    cpu = children_cpu() - cpu_before
    assert proc.returncode == 0, out
    result = json.loads(out)
    assert result["created"] == result["enrolled"] == leads, result
    shutil.rmtree(project, ignore_errors=True)
    return {"leads_per_s": leads / elapsed, "cpu_s": cpu, "server_s": server,
            "load": load_average()}  # fmt: skip


def import_rounds(
    kind: str, args: argparse.Namespace, env: dict[str, str] | None
) -> Iterator[dict]:
    """Rounds of the import, the baseline's and this code's alternating, each on a fresh store;
    the best of each, with the machine's load average when it ran."""
    compared = codes(args.baseline, env)
    runs: dict[str, list[dict]] = {label: [] for label in compared}
    for _ in range(args.import_rounds):
        for label, code in compared.items():
            with fresh_store(kind, args.postgres) as url:
                runs[label].append(import_leads(url, args.leads, code))
    for label, got in runs.items():
        yield {"code": label} | best_run(got)


def best_run(runs: list[dict]) -> dict:
    """The run of most leads/s (the one the others' load disturbed least, with the load average
    as it ended), and the range of all."""
    ranked = sorted(runs, key=lambda got: got["leads_per_s"])
    rates = f"{ranked[0]['leads_per_s']:,.0f}-{ranked[-1]['leads_per_s']:,.0f}"
    return ranked[-1] | {"range": rates, "rounds": len(runs)}


def watch_server(store: Store, proc: subprocess.Popen) -> float:
    """The CPU seconds of the store's Postgres backends while `proc` runs (the last reading
    of each, polled every 20 ms: a backend's time is gone from /proc once it exits)."""
    seen: dict[int, float] = {}
    while proc.poll() is None:
        seen |= server_cpu(store)
        time.sleep(0.02)
    return sum(seen.values())


def children_cpu() -> float:
    """CPU seconds of the finished child processes (the import and its helper)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def write_leads(path: Path, count: int) -> None:
    """A web form export: every lead with an email and a phone (distinct numbers)."""
    temperatures = ("Warm", "Hot", "Cold")
    with path.open("w", newline="") as file:
        out = csv.writer(file)
        out.writerow(("External ID", "Full Name", "Email", "Phone", "Lead Score", "Temperature",
                      "Lead Source", "Tags", "Goal"))  # fmt: skip
        for n in range(count):
            phone = f"+1415{2000000 + n:07d}"
            out.writerow((f"crm-{n}", f"Lead Number{n}", f"lead{n}@example.com", phone, n % 101,
                          temperatures[n % 3], "Instagram", "vip" if n % 7 == 0 else "",
                          "strength"))  # fmt: skip


# The table


def row(case: str, store: str, daemons: str, in_store: int, result: str, rss: float | None):
    return {"case": case, "store": store, "daemons": daemons, "in store": f"{in_store:,}",
            "result": result, "peak RSS": f"{rss:.0f} MB" if rss else "-"}  # fmt: skip


def run_cases(args: argparse.Namespace) -> Iterator[dict]:
    """Every case asked for; the throughput beside --engine-baseline's code, when given."""
    with baseline(args.engine_baseline) as before:
        yield from _cases(args, before)


def _cases(args: argparse.Namespace, before: dict[str, str] | None) -> Iterator[dict]:
    stores = [kind for kind in args.stores if kind == "sqlite" or args.postgres]
    name = {"sqlite": "SQLite", "postgres": "Postgres"}
    n = args.enrollments
    for kind in stores:
        daemon_counts = [1] if kind == "sqlite" else args.daemons
        if "throughput" in args.cases:
            for daemons in daemon_counts:
                yield from against_ceiling(kind, args.postgres, n, daemons, args.pairs, before)
        if "caps" in args.cases:
            for daemons in daemon_counts:
                yield with_and_without_caps(
                    kind, args.postgres, n, daemons, args.pairs, args.caps_ledger
                )
        if "lag" in args.cases:
            with fresh_store(kind, args.postgres) as url:
                got = lag(url, args.rate, args.seconds, args.warmup)
            result = (f"{args.rate:,}/s for {args.seconds} s: p50 {got['lag_p50_s']:.3f} s, "
                      f"p99 {got['lag_p99_s']:.3f} s, max {got['lag_max_s']:.3f} s")  # fmt: skip
            yield row("lag", name[kind], "1", args.rate * args.seconds, result, got["peak_rss_mb"])
        if "scale" in args.cases and kind in args.scale_stores:
            due, big = args.scale_due, args.scale_to
            with fresh_store(kind, args.postgres) as url:
                small = throughput(url, due, 1, rounds=args.rounds)
            with fresh_store(kind, args.postgres) as url:
                large = throughput(url, due, 1, later=big - due, rounds=args.rounds)
            ratio = large["steps_per_s"] / small["steps_per_s"]
            cpu_ratio = small["cpu_s"] / large["cpu_s"]
            result = (f"{due:,} due, best of {args.rounds}: {large['steps_per_s']:,.0f} vs "
                      f"{small['steps_per_s']:,.0f} steps/s with {due:,} in store = {ratio:.0%} "
                      f"(per daemon CPU-second: {cpu_ratio:.0%})")  # fmt: skip
            yield row("scale", name[kind], "1", big, result, large["peak_rss_mb"])
        if "links" in args.cases:
            yield from tracked_links(kind, args.postgres, n, args.pairs)
        if "variants" in args.cases:
            yield from with_variants(kind, args.postgres, n, args.pairs)
        if "import" in args.cases:
            with baseline(args.baseline) as env:
                for got in import_rounds(kind, args, env):
                    yield row("import", name[kind], "-", args.leads, import_result(got, args), None)


def import_result(got: dict, args: argparse.Namespace) -> str:
    """`this code: 12,000 leads/s (best of 3: 11,000-12,000; CPU/lead ...; load 1.2 ...)`."""
    result = (f"{got['code']}: {got['leads_per_s']:,.0f} leads/s (best of {got['rounds']}: "
              f"{got['range']}; CPU/lead: {got['cpu_s'] / args.leads * 1e6:.0f} µs, command "
              "and helper")  # fmt: skip
    if got["server_s"]:
        result += f" + Postgres {got['server_s'] / args.leads * 1e6:.0f} µs"
    return result + f"; load {got['load']})"


def against_ceiling(
    kind: str,
    server: str | None,
    n: int,
    daemons: int,
    pairs: int,
    before: dict[str, str] | None = None,
) -> Iterator[dict]:
    """The engine's throughput and the ceiling's (and a baseline's code, `before`, when given),
    alternating `pairs` times; medians, and their ratio (each on a fresh store)."""
    codes = {"this code": None} | ({"baseline": before} if before is not None else {})
    engine: dict[str, list[dict]] = {label: [] for label in codes}
    raw = []
    for _ in range(pairs):
        for label, env in codes.items():
            with fresh_store(kind, server) as url:
                engine[label].append(throughput(url, n, daemons, sequences=NEXT_STEP, env=env))
        with fresh_store(kind, server) as url:
            raw.append(ceiling(url, n, daemons))
    top = median_of(raw)
    name, count = {"sqlite": "SQLite", "postgres": "Postgres"}[kind], str(daemons)
    of = f", median of {pairs}" if pairs > 1 else ""
    for label, runs in engine.items():
        got = median_of(runs)
        ratio = got["steps_per_s"] / top["steps_per_s"]
        by_cpu = (top["cpu_s"] + top["server_s"]) / (got["cpu_s"] + got["server_s"])
        result = (
            f"{got['steps_per_s']:,.0f} steps/s = {ratio:.2f} of the ceiling, {by_cpu:.2f} by "
            f"CPU per step{of} ({cpu_per_step(got, n)}; load {load_average()})"
        )
        case = "throughput" if label == "this code" else "throughput, baseline"
        yield row(case, name, count, n, result, got["peak_rss_mb"])
    result = f"{top['steps_per_s']:,.0f} steps/s{of} ({cpu_per_step(top, n, 'raw SQL')})"
    yield row("ceiling", name, count, n, result, None)


def tracked_links(kind: str, server: str | None, n: int, pairs: int):
    """Throughput with track_links on against off, alternating `pairs` times; medians."""
    runs: dict[str, list[dict]] = {"true": [], "false": []}
    for _ in range(pairs):
        for track in runs:
            sequences = {"bench.yaml": LINKED.format(track=track)}
            with fresh_store(kind, server) as url:
                runs[track].append(throughput(url, n, 1, sequences=sequences, files=TRACKING))
    on, off = median_of(runs["true"]), median_of(runs["false"])
    name, of = {"sqlite": "SQLite", "postgres": "Postgres"}[kind], f", median of {pairs}"
    for label, got in (("links tracked", on), ("links untracked", off)):
        result = f"{got['steps_per_s']:,.0f} steps/s{of} ({cpu_per_step(got, n)})"
        if got is on:
            result += f"; {on['steps_per_s'] / off['steps_per_s']:.2f} of untracked"
        yield row(label, name, "1", n, result, got["peak_rss_mb"])


def with_variants(kind: str, server: str | None, n: int, pairs: int) -> Iterator[dict]:
    """One daemon's throughput with an A/B-tested step beside the same step without, alternating
    `pairs` times (medians)."""
    plain, tested = [], []
    for _ in range(pairs):
        with fresh_store(kind, server) as url:
            plain.append(throughput(url, n, 1))
        with fresh_store(kind, server) as url:
            tested.append(throughput(url, n, 1, sequences=A_B_TEST))
    without, with_ = median_of(plain), median_of(tested)
    of = f", median of {pairs}" if pairs > 1 else ""
    ratio = with_["steps_per_s"] / without["steps_per_s"]
    result = (
        f"{with_['steps_per_s']:,.0f} steps/s with a 2-variant step vs "
        f"{without['steps_per_s']:,.0f} without = {ratio:.0%}{of} ({cpu_per_step(with_, n)} vs "
        f"{without['cpu_s'] / n * 1e6:.0f} µs)"
    )
    name = {"sqlite": "SQLite", "postgres": "Postgres"}[kind]
    yield row("variants", name, "1", n, result, with_["peak_rss_mb"])


def with_and_without_caps(
    kind: str, server: str | None, n: int, daemons: int, pairs: int, ledger: bool = False
):
    """The throughput case without caps and with CAPS (each lead's ledger row made first, with
    `ledger`), alternating `pairs` times; medians."""
    plain, capped = [], []
    for _ in range(pairs):
        with fresh_store(kind, server) as url:
            plain.append(throughput(url, n, daemons))
        with fresh_store(kind, server) as url:
            capped.append(throughput(url, n, daemons, settings=CAPS, ledger=ledger))
    without, got = median_of(plain), median_of(capped)
    ratio = got["steps_per_s"] / without["steps_per_s"]
    of = f", median of {pairs}" if pairs > 1 else ""
    result = (
        f"{got['steps_per_s']:,.0f} steps/s with [caps] vs {without['steps_per_s']:,.0f} "
        f"without = {ratio:.0%}{of} ({cpu_per_step(got, n)} vs "
        f"{cpu_per_step(without, n).removeprefix('CPU/step: ')}; load {load_average()})"
    )
    name = {"sqlite": "SQLite", "postgres": "Postgres"}[kind]
    case = "caps, ledger rows there" if ledger else "caps"
    return row(case, name, str(daemons), n, result, got["peak_rss_mb"])


def median_of(results: list[dict]) -> dict:
    """The result of median steps/s."""
    return sorted(results, key=lambda got: got["steps_per_s"])[len(results) // 2]


def cpu_per_step(got: dict, steps: int, who: str = "daemons") -> str:
    """CPU per step of the daemons (and of their Postgres backends): what the rate costs."""
    text = f"CPU/step: {who} {got['cpu_s'] / steps * 1e6:.0f} µs"
    if got["server_s"]:
        text += f" + Postgres {got['server_s'] / steps * 1e6:.0f} µs"
    return text


def markdown(rows: list[dict]) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    return "\n".join(lines + ["| " + " | ".join(r[k] for k in keys) + " |" for r in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enrollments", type=int, default=100_000, help="throughput: due steps")
    parser.add_argument("--postgres", default=os.environ.get("NURTURE_TEST_DATABASE_URL"))
    parser.add_argument("--daemons", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--pairs", type=int, default=1, help="throughput: engine/ceiling rounds")
    parser.add_argument(
        "--cases",
        nargs="+",
        default=["throughput", "caps", "lag", "scale", "variants", "import"],
    )
    parser.add_argument("--caps-ledger", action="store_true", help="caps: every lead has a "
                        "ledger row already (its second message)")  # fmt: skip
    parser.add_argument("--rate", type=int, default=1000, help="lag: steps falling due a second")
    parser.add_argument("--seconds", type=int, default=30, help="lag: for how long")
    parser.add_argument("--warmup", type=float, default=5, help="lag: s before the first is due")
    parser.add_argument("--scale-due", type=int, default=10_000)
    parser.add_argument("--scale-to", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3, help="scale: runs, the best counts")
    parser.add_argument("--stores", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("--scale-stores", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("--leads", type=int, default=100_000, help="import: rows in the CSV")
    parser.add_argument("--baseline", default=DEFAULT, help="import: the revision to compare "
                        "with, run in the same rounds ('' for none)")  # fmt: skip
    parser.add_argument("--engine-baseline", default="", help="throughput: a revision run "
                        "beside this code in the same rounds ('' for none)")  # fmt: skip
    parser.add_argument("--import-rounds", type=int, default=3, help="import: rounds of each")
    parser.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    args = parser.parse_args()
    rows = []
    try:
        for result in run_cases(args):
            rows.append(result)
            print(json.dumps(result) if args.json else f"  {result}", file=sys.stderr, flush=True)
    finally:
        remove_projects()
    print("\n".join(json.dumps(r) for r in rows) if args.json else markdown(rows))


if __name__ == "__main__":
    main()
