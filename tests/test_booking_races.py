"""No slot is ever booked twice: two daemons and a `nurture serve` book 200 calls at once
into 20 free slots on one Postgres store, and exactly 20 are booked, each once."""

import os
import subprocess
import sys
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from builders import sequence, step
from enrolling import apply, drain, enroll
from servers import free_port
from serving import wait_healthy
from sqlalchemy import func, select

from nurture.rules.booking import form_key, make_token
from nurture.spec.window import WEEKDAYS
from nurture.store.db import open_store
from nurture.store.tables import Appointment

SECRET = "race-secret"
CODE = str(Path(__file__).parents[1])


def _toml(day: str) -> str:
    """20 one-hour slots, 02:00-22:00 UTC on one day of the coming week, and no other."""
    return (
        'timezone = "UTC"\n[availability]\nslot = "1h"\nnotice = "0m"\nhorizon = "6d"\n'
        f'[availability.hours]\n{day} = "02:00-22:00"\n'
    )


def _calls(mode: str) -> dict:
    made = step("Book a call", "schedule_appointment")
    made["action_config"] |= {"mode": mode, "after": "0m"}
    return made


def _post(url: str, token: str, slot: str) -> int:
    body = urllib.parse.urlencode({"form_key": form_key(SECRET, token), "slot": slot}).encode()
    request = urllib.request.Request(f"{url}/book/{token}", body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def test_two_daemons_and_a_server_book_20_slots_once_each(project: Path, postgres_url: str):
    now = datetime.now(UTC)
    day = WEEKDAYS[(now + timedelta(days=2)).weekday()]
    (project / "nurture.toml").write_text(_toml(day))
    (project / ".env").write_text(f"NURTURE_AVAILABILITY__SECRET={SECRET}\n")
    from nurture.rules.availability import Availability, free_slots
    from nurture.settings import load_settings

    availability = load_settings(project).availability
    assert isinstance(availability, Availability)
    slots = free_slots(availability, "UTC", now)
    assert len(slots) == 20
    with open_store(postgres_url) as store:
        apply(store, project, sequence("Offer", _calls("offer")), sequence("Auto", _calls("auto")))
        offered = [enroll(store, "Offer", now, email=f"o{n}@example.com") for n in range(40)]
        drain(store, now, booking=load_settings(project).booking)
        for n in range(160):
            enroll(store, "Auto", now, email=f"a{n}@example.com")
        tokens = [make_token(SECRET, enrollment_id, now) for enrollment_id in offered]
        env = os.environ | {"PYTHONPATH": CODE}
        base = [sys.executable, "-m", "nurture", "--database-url", postgres_url]
        port = free_port()
        server = subprocess.Popen(
            [*base, "serve", "--port", str(port)], cwd=project, env=env, stderr=subprocess.PIPE
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(url, server)
            daemons = [
                subprocess.Popen(
                    [*base, "run", "--once", "--batch", "8", "--channel", "outbox"],
                    cwd=project,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                )  # fmt: skip
                for _ in range(2)
            ]
            with ThreadPoolExecutor(8) as pool:
                picks = [slots[n % 20].isoformat() for n in range(40)]
                statuses = list(
                    pool.map(lambda pair: _post(url, *pair), zip(tokens, picks, strict=True))
                )
            for daemon in daemons:
                _, err = daemon.communicate(timeout=300)
                assert daemon.returncode == 0, err
        finally:
            server.terminate()
            server.communicate(timeout=30)
        table = Appointment.__table__
        with store.begin() as connection:
            rows = connection.execute(select(table.c.status, table.c.starts_at, table.c.mode)).all()
            booked = [row.starts_at for row in rows if row.status == "booked"]
            assert len(booked) == 20 and sorted(booked) == slots
            assert len(rows) == 200
            by_status = dict(
                connection.execute(
                    select(table.c.status, func.count()).group_by(table.c.status)
                ).all()
            )
        pages_booked = statuses.count(200)
        assert set(statuses) <= {200, 409}
        assert by_status["unbooked"] == 160 - (20 - pages_booked)  # every auto lead tried
        assert by_status.get("offered", 0) == 40 - pages_booked
