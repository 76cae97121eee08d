"""`nurture run` as a real process: clean stops, crashes (SIGKILL) and several daemons on one store."""

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from builders import sequence, step, write
from proxy import Proxy
from sqlalchemy import func, make_url, select

from nurture.store.db import Store, open_store
from nurture.store.tables import Enrollment, Execution, Worker
from nurture.testing import enroll_many

THREE_TEXTS = sequence("Drip", step("One"), step("Two"), step("Three"))
LIVE = ("active", "running")


def start(project: Path, url: str, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "nurture", "--database-url", url, "run", "--channel", "outbox",
               "--poll", "0.2", "--log-format", "json", *extra]  # fmt: skip
    return subprocess.Popen(
        command, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_until(check, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def live(store: Store) -> int:
    with store.begin() as connection:
        return connection.execute(
            select(func.count()).select_from(Enrollment).where(Enrollment.status.in_(LIVE))
        ).scalar_one()


def sent_counts(store: Store) -> Counter:
    """(enrollment, step) -> how many times it was sent."""
    with store.begin() as connection:
        rows = connection.execute(
            select(Execution.enrollment_id, Execution.step_id).where(Execution.status == "sent")
        ).all()
    return Counter(tuple(row) for row in rows)


def stop(process: subprocess.Popen) -> tuple[str, str]:
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    return out, err


@pytest.fixture
def drip(project: Path, run_store, store: Store) -> Store:
    write(project, "drip.yaml", THREE_TEXTS)
    assert run_store("apply", "--yes").exit_code == 0
    return store


def test_the_daemon_runs_due_steps_and_stops_cleanly(
    drip: Store, project: Path, store_url: str, run_store
):
    enroll_many(drip, 40, datetime.now(UTC) - timedelta(minutes=1))
    daemon = start(project, store_url)
    try:
        wait_until(lambda: live(drip) == 0)
        status = json.loads(run_store("status", "--json").stdout)
        assert [w["alive"] for w in status["workers"]] == [True]
        assert status["due"] == 0 and status["enrollments"] == {"completed": 40}
    finally:
        out, err = stop(daemon)
    events = [
        json.loads(line)["event"] for line in (out + err).splitlines() if line.startswith("{")
    ]
    assert events[0] == "started" and "stopping" in events and events[-1] == "stopped"
    assert sorted(sent_counts(drip).values()) == [1] * 120
    with drip.begin() as connection:
        assert connection.execute(select(func.count()).select_from(Worker)).scalar_one() == 0


def test_a_killed_daemon_loses_no_step_and_repeats_none(drip: Store, project: Path, store_url: str):
    enroll_many(drip, 3000, datetime.now(UTC) - timedelta(minutes=1))
    first = start(project, store_url, "--lease", "2", "--batch", "100")
    wait_until(lambda: sum(sent_counts(drip).values()) >= 300)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=30)
    second = start(project, store_url, "--lease", "2", "--batch", "100")
    try:
        wait_until(lambda: live(drip) == 0, timeout=120)
    finally:
        stop(second)
    counts = sent_counts(drip)
    assert max(counts.values()) == 1, "a step was sent twice"
    with drip.begin() as connection:
        status_of = dict(connection.execute(select(Enrollment.id, Enrollment.status)).all())
        unknown = set(
            connection.execute(
                select(Execution.enrollment_id).where(Execution.status == "unknown")
            ).scalars()
        )
    assert set(status_of.values()) <= {"completed", "unknown"} and len(status_of) == 3000
    assert unknown == {e for e, status in status_of.items() if status == "unknown"}
    sent_steps: dict[int, set[str]] = {}
    for enrollment_id, step_id in counts:
        sent_steps.setdefault(enrollment_id, set()).add(step_id)
    for enrollment_id, status in status_of.items():
        if status == "completed":
            assert sent_steps[enrollment_id] == {"one", "two", "three"}


@pytest.mark.postgres
def test_three_daemons_share_the_work_without_repeating_a_step(
    project: Path, postgres_url: str, run
):
    write(project, "drip.yaml", sequence("Drip", step("One")))
    assert run("--database-url", postgres_url, "db", "upgrade").exit_code == 0  # on purpose
    assert run("--database-url", postgres_url, "apply", "--yes").exit_code == 0
    with open_store(postgres_url) as store:
        enroll_many(store, 20_000, datetime.now(UTC) - timedelta(minutes=1))
        daemons = [start(project, postgres_url, "--batch", "200") for _ in range(3)]
        try:
            wait_until(lambda: live(store) == 0, timeout=240)
        finally:
            logs = [stop(daemon) for daemon in daemons]
        counts = sent_counts(store)
    assert len(counts) == 20_000 and set(counts.values()) == {1}
    executed = [json.loads(line)["executed"] for out, err in logs for line in (out + err).splitlines()
                if line.startswith("{") and json.loads(line)["event"] == "stopped"]  # fmt: skip
    assert sum(executed) == 20_000 and all(n > 0 for n in executed), executed


@pytest.mark.postgres
def test_a_store_outage_logs_one_line_per_tick_and_the_work_completes_after_it(
    project: Path, postgres_url: str, run, tmp_path: Path
):
    write(project, "drip.yaml", THREE_TEXTS)
    assert run("--database-url", postgres_url, "db", "upgrade").exit_code == 0  # on purpose
    assert run("--database-url", postgres_url, "apply", "--yes").exit_code == 0
    server = make_url(postgres_url)
    proxy = Proxy((server.host, server.port or 5432))
    through = server.set(port=proxy.port).render_as_string(hide_password=False)
    log_file = tmp_path / "daemon.log"
    with open_store(postgres_url) as store, log_file.open("w") as log:
        enroll_many(store, 300, datetime.now(UTC), spacing=timedelta(milliseconds=20))
        command = [sys.executable, "-m", "nurture", "--database-url", through, "run"]
        command += ["--poll", "0.2", "--lease", "2"]
        daemon = subprocess.Popen(command, cwd=project, stderr=log, text=True)
        try:
            wait_until(lambda: sum(sent_counts(store).values()) > 0)
            proxy.cut()
            wait_until(lambda: log_file.read_text().count("store unavailable: ") >= 3)
            proxy.restore()
            wait_until(lambda: live(store) == 0, timeout=120)
            proxy.cut()  # and stopped while the store is away
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=60)
        finally:
            daemon.kill()
        counts = sent_counts(store)
    said = log_file.read_text()
    assert daemon.returncode == 0, said
    assert "Traceback" not in said, said
    outage = [line for line in said.splitlines() if "store unavailable: " in line]
    assert outage and said.splitlines()[-1].split(" ", 1)[1].startswith("stopped")
    for secret in (server.host, str(server.port or 5432), str(proxy.port), server.username):
        assert not [line for line in outage if secret in line], (secret, outage)
    assert len(counts) == 900 and set(counts.values()) == {1}  # nothing lost, nothing twice
