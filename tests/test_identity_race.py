"""A running import and the HTTP webhook storing one new email at once make one lead, on the
real Postgres: the keys' unique index makes the later writer wait for the earlier one's end."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from builders import sequence, step, write
from serving import serving, token
from sqlalchemy import func, select, text

from nurture.leads import imports
from nurture.leads.imports import import_leads
from nurture.leads.records import LeadRules
from nurture.store.db import open_store
from nurture.store.tables import Enrollment, Lead

pytestmark = pytest.mark.postgres
ROWS = 2500  # three batches of the import
BO = 1500  # the row of the email both write: in the second batch
BO_LEAD = {"funnel": "website", "name": "Bo Webhook", "email": "bo@example.com"}


@pytest.fixture
def project_on_postgres(run, project: Path, postgres_url: str, monkeypatch) -> str:
    monkeypatch.setenv("NURTURE_AUTO_MIGRATE", "true")
    write(project, "welcome.yaml", sequence("Welcome", step("Hi"), funnels=["Website"]))
    write(project, "referral.yaml", sequence("Referral", step("Hello"), funnels=["Referrals"]))
    assert run("--database-url", postgres_url, "apply", "--yes").exit_code == 0
    lines = ["name,email"] + [
        f"Lead {n},{'Bo@Example.com' if n == BO else f'lead{n}@example.com'}" for n in range(ROWS)
    ]
    (project / "leads.csv").write_text("\n".join(lines) + "\n")
    return postgres_url


def run_import(project: Path, url: str, progress=None) -> imports.ImportResult:
    with open_store(url) as store, store.session(immediate=True) as session:
        return import_leads(
            session, project / "leads.csv", datetime.now(UTC), LeadRules(), funnel="website",
            progress=progress,
        )  # fmt: skip


def people(url: str, email: str) -> list[int]:
    with open_store(url) as store, store.begin() as connection:
        return list(connection.execute(select(Lead.id).where(Lead.email == email)).scalars())


def totals(url: str) -> tuple[int, int]:
    with open_store(url) as store, store.begin() as connection:
        leads = connection.execute(select(func.count()).select_from(Lead)).scalar_one()
        enrolled = connection.execute(select(func.count()).select_from(Enrollment)).scalar_one()
    return leads, enrolled


def waiting_on_a_lock(url: str) -> bool:
    """Whether a backend of this database waits for another transaction (the webhook's)."""
    with open_store(url) as store, store.begin() as connection:
        query = text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'"
        )
        return connection.execute(query).scalar_one() > 0


def webhook_after_the_look(monkeypatch, api, headers: dict, answers: list) -> None:
    """The webhook stores Bo (through another funnel: its decision is not the import's, whose
    uncommitted rows it would wait for) right after the import looked up the batch holding
    Bo's row and found the email free; its answer goes to `answers`."""
    looked = imports.Importer._held
    referred = BO_LEAD | {"funnel": "referrals"}

    def look_then_webhook(importer, batch):
        held = looked(importer, batch)  # the import looked: Bo is not stored yet
        if any(("email", "bo@example.com") in keys for keys in batch):  # the rows' keys
            answers.append(api.post("/api/leads", json=referred, headers=headers))
        return held

    monkeypatch.setattr(imports.Importer, "_held", look_then_webhook)


def test_the_webhook_waits_for_the_import_that_holds_the_email(run, project, project_on_postgres):
    url = project_on_postgres
    answers = []
    with serving(project, url) as api:
        ingest = token(
            lambda *a: run("--database-url", url, *a), "landing", "ingest"
        )  # fmt: skip

        def post() -> None:
            answers.append(api.post("/api/leads", json=BO_LEAD, headers=ingest))

        webhook = threading.Thread(target=post)

        def progress(done: int, total: int) -> None:
            if done == total:  # the second batch (Bo's) is written, not committed
                webhook.start()
                deadline = time.monotonic() + 60
                while not waiting_on_a_lock(url) and time.monotonic() < deadline:
                    time.sleep(0.05)

        result = run_import(project, url, progress)
        webhook.join()
    assert result.created == ROWS and not result.errors
    [answer] = answers
    assert answer.status_code == 200, answer.text  # the import's lead, updated
    assert answer.json()["created"] is False
    assert people(url, "bo@example.com") == [answer.json()["leadId"]]
    assert totals(url) == (ROWS, ROWS)


def test_an_import_updates_the_lead_the_webhook_stored_meanwhile(
    run, project, project_on_postgres, monkeypatch
):
    url = project_on_postgres
    answers: list = []
    with serving(project, url) as api:
        ingest = token(lambda *a: run("--database-url", url, *a), "landing", "ingest")
        webhook_after_the_look(monkeypatch, api, ingest, answers)
        result = run_import(project, url)
    [answer] = answers
    assert answer.status_code == 201 and answer.json()["created"] is True
    assert (result.created, result.updated) == (ROWS - 1, 1) and not result.errors
    assert people(url, "bo@example.com") == [answer.json()["leadId"]]
    assert totals(url) == (ROWS, ROWS)


def test_an_import_and_a_burst_of_webhooks_at_once_store_one_bo(run, project, project_on_postgres):
    url = project_on_postgres
    with serving(project, url) as api:
        ingest = token(lambda *a: run("--database-url", url, *a), "landing", "ingest")
        with ThreadPoolExecutor(max_workers=9) as pool:
            imported = pool.submit(run_import, project, url)
            posts = [
                pool.submit(api.post, "/api/leads", json=BO_LEAD, headers=ingest) for _ in range(16)
            ]
            answers = [post.result() for post in posts]
            result = imported.result()
    assert not result.errors
    assert all(answer.status_code in (200, 201) for answer in answers), [a.text for a in answers]
    assert len(people(url, "bo@example.com")) == 1
    assert totals(url) == (ROWS, ROWS)


def test_a_row_that_joins_the_webhooks_lead_brings_its_other_keys(
    run, project, project_on_postgres, monkeypatch
):
    """Bo's row (email and phone) loses the email to the webhook after the import looked: the
    row updates the webhook's Bo, who keeps the row's phone as a key too, so a later lead with
    only that phone is Bo and not a second person."""
    url = project_on_postgres
    lines = ["name,email,phone"] + [
        f"Lead {n},{'bo@example.com' if n == BO else f'lead{n}@example.com'},"
        + ("+1 415 555 0100" if n == BO else "")
        for n in range(ROWS)
    ]
    (project / "leads.csv").write_text("\n".join(lines) + "\n")
    answers: list = []
    with serving(project, url) as api:
        ingest = token(lambda *a: run("--database-url", url, *a), "landing", "ingest")
        webhook_after_the_look(monkeypatch, api, ingest, answers)
        result = run_import(project, url)
        monkeypatch.undo()
        by_phone = {"funnel": "referrals", "name": "Bo Again", "phone": "+14155550100"}
        again = api.post("/api/leads", json=by_phone, headers=ingest)
    [answer] = answers
    bo = answer.json()["leadId"]
    assert (result.created, result.updated) == (ROWS - 1, 1)
    assert not result.errors and not result.warnings
    assert again.status_code == 200, again.text
    assert (again.json()["leadId"], again.json()["created"]) == (bo, False)
    assert totals(url) == (ROWS, ROWS)
    with open_store(url) as store, store.begin() as connection:
        phone = connection.execute(select(Lead.phone).where(Lead.id == bo)).scalar_one()
    assert phone == "+14155550100"
