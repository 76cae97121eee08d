"""A person who texts the coach's number first (issue 16): with `[twilio] inbound_funnel` they
become a lead through that funnel, are enrolled by the usual matching and get its first text
through the local Twilio, and the coach hears of them; without it no lead is made but the coach
still hears of the message. Signed webhooks posted to a real server (uvicorn on loopback)."""

import json
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from urllib.parse import urlencode

import pytest
from builders import sequence, step, write
from servers import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio, Recorder
from serving import live
from twilio.request_validator import RequestValidator

PHONE = "+12025550123"
INBOUND = "/webhooks/twilio/inbound"


@pytest.fixture
def coach() -> Iterator[Recorder]:
    """Where the coach's notes go (a JSON webhook)."""
    recorder = Recorder()
    with recorder.serving() as url:
        recorder.url = url
        yield recorder


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    fake = FakeTwilio()
    with fake.serving() as url:
        fake.url = url
        yield fake


@pytest.fixture
def texted(run_store, project, monkeypatch, coach, twilio):
    """A project whose `sms` funnel runs `Texted first` (stops on reply), Twilio configured."""

    def configure(funnel: str | None = "sms") -> None:
        inbound = f'inbound_funnel = "{funnel}"\n' if funnel else ""
        (project / "nurture.toml").write_text(
            'sequences_dir = "sequences"\ntimezone = "UTC"\n'
            f'[twilio]\naccount_sid = "{ACCOUNT_SID}"\nsms_from = "+15550001111"\n'
            f'api_url = "{twilio.url}"\n{inbound}'
            f'[notifications]\nwebhook_url = "{coach.url}/hooks/coach"\n'
        )

    monkeypatch.setenv("NURTURE_TWILIO__AUTH_TOKEN", AUTH_TOKEN)
    configure()
    steps = step("Thanks for writing"), step("Again", delay_days=1)
    write(project, "first.yaml", sequence("Texted first", *steps, funnels=["sms"],
                                          stop_on_reply=True))  # fmt: skip
    write(project, "web.yaml", sequence("Web", step("Hello"), funnels=["website"]))
    assert run_store("apply", "--yes").exit_code == 0
    return configure


@contextmanager
def served(project, store_url) -> Iterator:
    """The API on a real server; `text(form)` posts a form signed as Twilio signs it."""
    with live(project, store_url) as base:

        def text(form: dict[str, str]) -> int:
            url = base + INBOUND
            signature = RequestValidator(AUTH_TOKEN).compute_signature(url, form)
            headers = {"X-Twilio-Signature": signature,
                       "Content-Type": "application/x-www-form-urlencoded"}  # fmt: skip
            request = urllib.request.Request(url, data=urlencode(form).encode(), headers=headers)
            with urllib.request.urlopen(request, timeout=30) as answer:
                assert b"<Response></Response>" in answer.read()
                return answer.status

        yield text


def leads(run_store) -> list[dict]:
    return json.loads(run_store("leads", "list", "--json").stdout)


def notes(coach: Recorder) -> list[dict]:
    return [r.json() for r in coach.requests if r.path == "/hooks/coach"]


def test_a_stranger_texting_first_becomes_a_lead_is_enrolled_and_the_coach_hears(
    texted, run_store, project, store_url, coach, twilio
):
    with served(project, store_url) as text:
        assert text({"MessageSid": "SMa1", "From": PHONE, "Body": "Hi, saw your ad"}) == 200
        assert text({"MessageSid": "SMa1", "From": PHONE, "Body": "Hi, saw your ad"}) == 200
    [lead] = leads(run_store)
    shown = json.loads(run_store("leads", "show", str(lead["id"]), "--json").stdout)
    assert (shown["name"], shown["phone"], shown["source"]) == (PHONE, PHONE, "sms")
    [enrollment] = shown["enrollments"]
    assert (enrollment["sequence"], enrollment["status"]) == ("Texted first", "active")
    assert [r["text"] for r in shown["replies"]] == ["Hi, saw your ad"]  # once: Twilio retried
    assert run_store("run", "--once", "--channel", "live").exit_code == 0
    assert [(m["To"], m["Body"]) for m in twilio.sent()] == [
        (PHONE, f"Hi {PHONE}, Thanks for writing")
    ]
    [note] = notes(coach)
    assert note["subject"] == f"New lead {PHONE} wrote (sms)"
    assert note["message"].startswith(f"{PHONE} wrote first by sms: “Hi, saw your ad”")
    assert "A new lead, from funnel sms." in note["message"]
    assert "Still running: Texted first." in note["message"]
    with served(project, store_url) as text:  # the lead's answer to the first text is a reply
        assert text({"MessageSid": "SMa2", "From": PHONE, "Body": "Tuesday?"}) == 200
    assert len(leads(run_store)) == 1
    shown = json.loads(run_store("leads", "show", str(lead["id"]), "--json").stdout)
    assert shown["enrollments"][0]["status"] == "stopped"
    assert run_store("run", "--once", "--channel", "live").exit_code == 0
    assert notes(coach)[1]["subject"] == f"{PHONE} replied (sms)"
    assert len(twilio.sent()) == 1  # the stopped sequence sends nothing more


def test_a_whatsapp_sender_is_named_by_their_profile(texted, run_store, project, store_url):
    form = {"MessageSid": "SMw1", "From": f"whatsapp:{PHONE}", "Body": "Olá",
            "ProfileName": "Ana Lima"}  # fmt: skip
    with served(project, store_url) as text:
        assert text(form) == 200
    [lead] = leads(run_store)
    assert (lead["name"], lead["phone"]) == ("Ana Lima", PHONE)


def test_without_an_inbound_funnel_no_lead_is_made_but_the_coach_hears(
    texted, run_store, project, store_url, coach
):
    texted(None)
    with served(project, store_url) as text:
        assert text({"MessageSid": "SMb1", "From": PHONE, "Body": "Who is this?"}) == 200
    assert leads(run_store) == []
    assert run_store("run", "--once", "--channel", "live").exit_code == 0
    [note] = notes(coach)
    assert note["subject"] == f"Message from {PHONE}, not a lead (sms)"
    assert note["message"].startswith(f"{PHONE} wrote by sms: “Who is this?”")
    assert "set [twilio] inbound_funnel" in note["message"] and note["link"] is None


def test_a_stop_from_a_stranger_makes_no_lead_and_a_missing_funnel_is_told(
    texted, run_store, project, store_url, coach
):
    with served(project, store_url) as text:
        assert text({"MessageSid": "SMc1", "From": PHONE, "Body": "STOP"}) == 200
    assert leads(run_store) == []
    texted("walk-ins")
    with served(project, store_url) as text:
        assert text({"MessageSid": "SMc2", "From": PHONE, "Body": "Hello?"}) == 200
    assert leads(run_store) == []
    assert run_store("run", "--once", "--channel", "live").exit_code == 0
    [note] = notes(coach)  # the STOP told nobody; the message to a missing funnel is told
    assert "inbound_funnel names no funnel" in note["message"] and "walk-ins" in note["message"]


def test_texts_arriving_together_from_a_stranger_make_one_lead(
    texted, run_store, project, store_url, coach
):
    forms = [{"MessageSid": f"SMd{n}", "From": PHONE, "Body": f"Hello {n}"} for n in range(4)]
    with served(project, store_url) as text, ThreadPoolExecutor(4) as pool:
        assert list(pool.map(text, forms)) == [200] * 4
    [lead] = leads(run_store)
    shown = json.loads(run_store("leads", "show", str(lead["id"]), "--json").stdout)
    assert len(shown["enrollments"]) == 1
    assert sorted(r["text"] for r in shown["replies"]) == [f"Hello {n}" for n in range(4)]
    assert run_store("run", "--once", "--channel", "live").exit_code == 0
    subjects = [note["subject"] for note in notes(coach)]
    assert subjects.count(f"New lead {PHONE} wrote (sms)") == 1 and len(subjects) == 4
