"""`nurture outbox list` as a user reads it: what `nurture run` kept instead of sending."""

import json

import pytest
from builders import sequence, step, write

from nurture.cli import output

SID = "HX" + "a" * 32
WELCOME = sequence(
    "Welcome",
    step("Hello"),
    step("Guide", "send_email"),
    {
        "name": "Reminder",
        "action_type": "send_whatsapp_message",
        "action_config": {
            "message": "Hi {{ lead.first_name }}",
            "template": {"content_sid": SID, "variables": {"1": "{{ lead.first_name }}"}},
        },
    },
    funnels=["website"],
)


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch):
    monkeypatch.setattr(output.out, "width", 200)


@pytest.fixture
def sent(run_store, project):
    """Two leads through Welcome, every step run once into the outbox."""
    write(project, "welcome.yaml", WELCOME)
    assert run_store("apply", "--yes").exit_code == 0
    for name, email, phone in (
        ("Ana Ruiz", "ana@example.com", "+447400555101"),
        ("Ben Okafor", "ben@example.com", "+447400555102"),
    ):
        lead = ["--name", name, "--email", email, "--phone", phone]
        added = run_store("leads", "add", "--funnel", "website", *lead)
        assert added.exit_code == 0, added.output
    result = run_store("run", "--once", "--channel", "outbox")
    assert result.exit_code == 0, result.output
    return run_store


def test_outbox_list_shows_every_kept_message_with_its_text(sent):
    result = sent("outbox", "list")
    assert result.exit_code == 0, result.output
    assert "sms to +447400555101  Ana Ruiz › Welcome › hello\n    Hi Ana, Hello" in result.output
    assert "email to ben@example.com  Ben Okafor › Welcome › guide\n" in result.output
    assert "    Subject: Guide\n    Hello Ben Okafor" in result.output
    # the lead never wrote: WhatsApp takes the template, shown with its filled variables
    assert f"    template {SID} {{{{1}}}}=Ana\n" in result.output
    assert result.output.count(" to +44740055510") == 4  # 2 sms, 2 whatsapp


def test_outbox_list_filters_by_lead_and_channel(sent):
    data = json.loads(sent("outbox", "list", "--lead", "ana@example.com", "--json").output)
    assert sorted(m["channel"] for m in data) == ["email", "sms", "whatsapp"]
    assert {m["lead"] for m in data} == {"Ana Ruiz"}
    emails = json.loads(sent("outbox", "list", "--channel", "EMAIL", "--json").output)
    assert [m["recipient"] for m in emails] == ["ben@example.com", "ana@example.com"]
    assert emails[0]["subject"] == "Guide" and emails[0]["step_id"] == "guide"
    assert len(json.loads(sent("outbox", "list", "--limit", "2", "--json").output)) == 2


def test_outbox_list_since_a_later_time_shows_nothing(sent):
    result = sent("outbox", "list", "--since", "2999-01-01")
    assert result.exit_code == 0
    assert result.output.strip() == "no messages in the outbox match"


def test_an_unknown_channel_is_refused_with_a_hint(sent):
    result = sent("outbox", "list", "--channel", "emial")
    assert result.exit_code == 1
    assert "--channel 'emial' is not a kind of message (did you mean 'email'?)" in result.output
