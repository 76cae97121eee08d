"""schedule_appointment books real slots: the first free one (auto), the one the lead picks on
the booking page (offer), or the sequence's fixed time, never one slot twice."""

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from builders import sequence, step
from enrolling import T0, apply, drain, enroll, enrollment
from serving import serving
from sqlalchemy import select

from nurture.channels.memory import MemoryChannel
from nurture.engine import appointments
from nurture.rules.availability import Availability
from nurture.rules.booking import Booking, make_token
from nurture.store.db import Store
from nurture.store.tables import Appointment

SECRET = "booking-secret"
HOURS = {"mon": "09:00-10:00", "tue": "09:00-10:00"}
TOML = """\
timezone = "Europe/Madrid"
[api]
public_url = "https://nurture.example.com"
[availability]
notice = "1h"
[availability.hours]
mon = "09:00-10:00"
tue = "09:00-10:00"
"""


def coach_booking(**fields: Any) -> Booking:
    availability = Availability.model_validate({"hours": HOURS, "notice": "1h"} | fields)
    return Booking(
        availability, "Europe/Madrid", SECRET, "https://nurture.example.com/book/{token}"
    )


def appointment_step(mode: str, **config: Any) -> dict[str, Any]:
    made = step("Book a call", "schedule_appointment")
    made["action_config"] |= {"mode": mode, "after": "0m"} | config
    return made


def booked(store: Store) -> list[Any]:
    query = select(Appointment.__table__).order_by(Appointment.id)
    with store.begin() as connection:
        return list(connection.execute(query))


def madrid(when: datetime | None) -> str:
    from zoneinfo import ZoneInfo

    assert when is not None
    return f"{when.astimezone(ZoneInfo('Europe/Madrid')):%a %H:%M}"


def test_auto_books_the_first_free_slots_in_order_and_never_one_twice(store: Store, project: Path):
    apply(store, project, sequence("Calls", appointment_step("auto")))
    for number in range(5):
        enroll(store, "Calls", name=f"Lead {number}", email=f"l{number}@example.com")
    assert drain(store, T0, booking=coach_booking()) == 5  # Mon 3 Mar 2025, 10:00 in Madrid
    rows = booked(store)
    # Monday's hour has passed: Tuesday's two slots, then the next Monday's and Tuesday's
    assert [madrid(row.starts_at) for row in rows[:4]] == [
        "Tue 09:00", "Tue 09:30", "Mon 09:00", "Mon 09:30",
    ]  # fmt: skip
    assert {row.status for row in rows[:4]} == {"booked"}
    assert rows[0].mode == "auto" and rows[0].uid.endswith("@nurture")
    assert rows[4].status == "booked" and madrid(rows[4].starts_at) == "Tue 09:00"  # a week on
    assert len({row.starts_at for row in rows}) == 5


def test_auto_with_no_free_slot_left_records_an_unbooked_appointment(store: Store, project: Path):
    apply(store, project, sequence("Calls", appointment_step("auto")))
    for number in range(3):
        enroll(store, "Calls", name=f"Lead {number}", email=f"l{number}@example.com")
    drain(store, T0, booking=coach_booking(hours={"tue": "09:00-10:00"}, horizon="2d"))
    assert [row.status for row in booked(store)] == ["booked", "booked", "unbooked"]


def test_a_fixed_time_already_booked_is_a_conflict_not_a_second_booking(
    store: Store, project: Path
):
    apply(store, project, sequence("Calls", step("Call", "schedule_appointment")))
    enroll(store, "Calls", name="Ana", email="ana@example.com")
    enroll(store, "Calls", name="Bo", email="bo@example.com")
    drain(store, T0)
    first, second = booked(store)
    assert first.starts_at == second.starts_at == T0 + timedelta(days=1)
    assert (first.status, second.status) == ("booked", "conflict")


def test_the_message_after_an_offer_carries_the_lead_s_booking_link(store: Store, project: Path):
    message = step("Pick a time", "send_email")
    message["action_config"]["body"] = "Pick a time: {{ booking_link }}"
    apply(store, project, sequence("Calls", appointment_step("offer"), message))
    enrollment_id = enroll(store, "Calls")
    channel = MemoryChannel()
    drain(store, T0, channel, booking=coach_booking())
    (row,) = booked(store)
    assert (row.status, row.starts_at, row.enrollment_id) == ("offered", None, enrollment_id)
    (sent,) = channel.sent
    assert re.search(r"https://nurture\.example\.com/book/[\w.-]{20,}", sent.body)


def test_a_booking_link_without_a_public_url_fails_its_step_saying_why(store: Store, project: Path):
    message = step("Pick a time", "send_sms")
    message["action_config"]["message"] = "Book: {{ booking_link }}"
    apply(store, project, sequence("Calls", message))
    enrollment_id = enroll(store, "Calls")
    drain(store, T0)
    with store.begin() as connection:
        from nurture.store.tables import Execution

        error = connection.execute(
            select(Execution.error).where(Execution.enrollment_id == enrollment_id)
        ).scalar_one()
    assert "booking_link needs [availability]" in error


# The page


@pytest.fixture
def offered(store: Store, store_url: str, project: Path) -> tuple[str, int]:
    """A lead in Lima offered a call, the email with its link sent; (link path, enrollment)."""
    (project / "nurture.toml").write_text(TOML)
    (project / ".env").write_text(f"NURTURE_AVAILABILITY__SECRET={SECRET}\n")
    message = step("Pick a time", "send_email")
    message["action_config"]["body"] = "{{ booking_link }}"
    apply(store, project, sequence("Calls", appointment_step("offer"), message))
    enrollment_id = enroll(store, "Calls", timezone="America/Lima")
    channel = MemoryChannel()
    now = datetime.now(UTC).replace(microsecond=0)
    drain(store, now, channel, booking=coach_booking())
    return channel.sent[0].body.removeprefix("https://nurture.example.com"), enrollment_id


def test_the_page_lists_free_slots_in_the_lead_s_zone_and_books_one(
    offered: tuple[str, int], store: Store, store_url: str, project: Path
):
    path, _ = offered
    with serving(project, store_url) as client:
        page = client.get(path)
        assert page.status_code == 200, page.text
        assert "America/Lima" in page.text
        slots = re.findall(r'name="slot" value="([^"]+)"', page.text)
        key = re.search(r'name="form_key" value="([^"]+)"', page.text).group(1)
        lima = datetime.fromisoformat(slots[0]).astimezone(ZoneInfo("America/Lima"))
        assert f">{lima:%H:%M}</label>" in page.text  # 09:00 in Madrid: 03:00 in Lima in winter
        done = client.post(path, data={"form_key": key, "slot": slots[0]})
        assert done.status_code == 200 and "Your call is booked" in done.text
        (row,) = booked(store)
        assert row.status == "booked" and row.starts_at == datetime.fromisoformat(slots[0])
        again = client.post(path, data={"form_key": key, "slot": slots[1]})
        assert "Your call is booked" in again.text
        (row,) = booked(store)
        assert row.starts_at == datetime.fromisoformat(slots[1]) and row.revision == 1
        gone = client.post(path, data={"form_key": key, "action": "cancel"})
        assert "cancelled" in gone.text
        assert booked(store)[0].status == "cancelled"


def test_a_slot_taken_meanwhile_is_refused_with_a_page(
    offered: tuple[str, int], store: Store, store_url: str, project: Path
):
    path, _ = offered
    with serving(project, store_url) as client:
        page = client.get(path)
        slot = re.findall(r'name="slot" value="([^"]+)"', page.text)[0]
        key = re.search(r'name="form_key" value="([^"]+)"', page.text).group(1)
        with store.begin(immediate=True) as connection:  # someone else took it
            table = Appointment.__table__
            connection.execute(
                table.insert().values(
                    lead_id=1, title="Other", starts_at=datetime.fromisoformat(slot),
                    status="booked", created_at=T0,
                )
            )  # fmt: skip
        taken = client.post(path, data={"form_key": key, "slot": slot})
        assert taken.status_code == 409 and "not a free slot" in taken.text


@pytest.mark.parametrize(
    ("mangle", "status", "words"),
    [
        (lambda path: path[:-6], 400, "not complete or not valid"),
        (lambda path: "/book/nonsense", 400, "not complete or not valid"),
        (lambda path: path + "x%00", 400, "not complete or not valid"),
    ],
)
def test_a_bad_link_gets_a_clear_page(
    offered: tuple[str, int], store_url: str, project: Path, mangle: Any, status: int, words: str
):
    path, _ = offered
    with serving(project, store_url) as client:
        answer = client.get(mangle(path))
        assert answer.status_code == status and words in answer.text
        assert answer.headers["content-type"].startswith("text/html")


def test_an_expired_link_says_so(
    offered: tuple[str, int], store: Store, store_url: str, project: Path
):
    path, enrollment_id = offered
    old = make_token(SECRET, enrollment_id, datetime.now(UTC) - timedelta(days=31))
    with serving(project, store_url) as client:
        answer = client.get(f"/book/{old}")
        assert answer.status_code == 410 and "expired" in answer.text


def test_a_form_from_elsewhere_is_refused(offered: tuple[str, int], store_url: str, project: Path):
    path, _ = offered
    with serving(project, store_url) as client:
        page = client.get(path)
        slot = re.findall(r'name="slot" value="([^"]+)"', page.text)[0]
        forged = client.post(path, data={"form_key": "guess", "slot": slot})
        assert forged.status_code == 403
        key = re.search(r'name="form_key" value="([^"]+)"', page.text).group(1)
        elsewhere = client.post(
            path, data={"form_key": key, "slot": slot}, headers={"Origin": "https://evil.test"}
        )
        assert elsewhere.status_code == 403


def test_steps_timed_from_the_call_wait_for_it_and_move_with_it(store: Store, project: Path):
    reminder = step("Reminder", "send_sms", relative_to="appointment", delay="-1h")
    reminder["action_config"]["message"] = "See you {{ appointment.when }}"
    apply(store, project, sequence("Calls", appointment_step("auto"), reminder))
    enrollment_id = enroll(store, "Calls", timezone="Europe/London")
    booking = coach_booking()
    drain(store, T0, booking=booking)
    (row,) = booked(store)
    assert enrollment(store, enrollment_id).next_run_at == row.starts_at - timedelta(hours=1)
    moved = row.starts_at + timedelta(days=7)
    with store.begin(immediate=True) as connection:
        appointments.reschedule(connection, booking, row.id, moved, T0)
    assert enrollment(store, enrollment_id).next_run_at == moved - timedelta(hours=1)
    channel = MemoryChannel()
    assert drain(store, moved - timedelta(hours=1), channel, booking=booking) == 1
    assert channel.sent[0].body == "See you Tuesday 11 March 2025, 08:00 (Europe/London)"
