"""The booking page in a real browser (Playwright, Chromium): a lead in Tokyo sees the coach's
Madrid hours in Tokyo time, picks one, and books it."""

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from builders import sequence, step
from enrolling import apply, drain, enroll
from serving import live
from sqlalchemy import select

from nurture.rules.booking import make_token
from nurture.settings import load_settings
from nurture.store.db import Store
from nurture.store.tables import Appointment

CHROMIUM = Path(os.environ.get("NURTURE_CHROMIUM", "/usr/bin/chromium"))
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (set NURTURE_CHROMIUM)"
)
SECRET = "browser-secret"
TOML = """\
timezone = "Europe/Madrid"
[api]
public_url = "https://nurture.example.com"
[availability]
notice = "1h"
horizon = "8d"
[availability.hours]
mon = "09:00-11:00"
wed = "15:00-16:00"
"""


@pytest.fixture
def served(store: Store, store_url: str, project: Path) -> Iterator[str]:
    """`nurture serve` on a free port for a project whose coach takes calls in Madrid."""
    (project / "nurture.toml").write_text(TOML)
    (project / ".env").write_text(f"NURTURE_AVAILABILITY__SECRET={SECRET}\n")
    with live(project, store_url) as url:
        yield url


def test_a_lead_books_a_slot_shown_in_their_own_time_zone(served: str, store: Store, project: Path):
    from playwright.sync_api import sync_playwright

    offer = step("Offer", "schedule_appointment")
    offer["action_config"] |= {"mode": "offer", "title": "Discovery call"}
    apply(store, project, sequence("Calls", offer))
    now = datetime.now(UTC)
    enrollment_id = enroll(store, "Calls", now, timezone="Asia/Tokyo")
    drain(store, now, booking=load_settings(project).booking)
    link = f"{served}/book/{make_token(SECRET, enrollment_id, now)}"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(link)
            assert page.locator("h1").inner_text() == "Book your call: Discovery call"
            assert page.locator("#zone").inner_text() == "Asia/Tokyo"
            first = page.locator('input[name="slot"]').first
            slot = datetime.fromisoformat(first.get_attribute("value") or "")
            tokyo = slot.astimezone(ZoneInfo("Asia/Tokyo"))
            label = page.locator("label").first.inner_text().strip()
            assert label == f"{tokyo:%H:%M}"  # Madrid 09:00 is Tokyo 17:00 (winter)
            assert slot.astimezone(ZoneInfo("Europe/Madrid")).hour in (9, 10, 15)
            first.check()
            page.get_by_role("button", name="Book this time").click()
            assert page.get_by_role("status").inner_text() == "Your call is booked."
            assert f"{tokyo:%A %d %B %Y, %H:%M}" in page.locator("#booked").inner_text()
        finally:
            browser.close()
    with store.begin() as connection:
        row = connection.execute(select(Appointment.__table__)).one()
    assert row.status == "booked" and row.starts_at == slot
