"""`nurture explain LEAD`: the decision, each step's state, when and why the next step runs."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from builders import sequence, step, write
from sqlmodel import select
from test_settle import crash_mid_send

from nurture.leads.enrollment import spec_of
from nurture.leads.records import LeadInput, LeadRules, add_lead
from nurture.rules.schedule import step_due
from nurture.store.tables import Enrollment, Execution, SequenceVersion

TUESDAY = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # 10:00 in New York; Thursday is Thanksgiving
WINDOW = {"days": "mon-fri", "start": "09:00", "end": "17:00", "holidays": "US"}


@pytest.fixture
def nurture(run_store, project: Path):
    steps = [step("Hi"), step("Tag", "add_lead_tag"), step("Check in", "send_email", delay_days=2)]
    write(
        project,
        "welcome.yaml",
        sequence(
            "Welcome",
            *steps,
            funnels=["web"],
            priority=5,
            send_window=WINDOW,
            trigger_conditions={"lead_score": {"min": 40}},
        ),
    )
    write(
        project,
        "hot.yaml",
        sequence(
            "Hot only", funnels=["web"], priority=9, trigger_conditions={"lead_temperature": "Hot"}
        ),
    )
    assert run_store("apply", "--yes").exit_code == 0
    return run_store


def arrive(store, **lead) -> None:
    data = LeadInput(**({"name": "Ana Ruiz", "email": "ana@example.com"} | lead))
    with store.session(immediate=True) as session:
        add_lead(session, data, "web", TUESDAY, LeadRules())


def run_first_steps(store) -> None:
    """What the engine records after running `hi` and skipping `tag`: the log and the next step."""
    with store.session(immediate=True) as session:
        enrollment = session.exec(select(Enrollment)).one()
        definition = session.exec(
            select(SequenceVersion.definition).where(
                SequenceVersion.sequence_id == enrollment.sequence_id
            )
        ).one()
        for step_id, status, detail in (
            ("hi", "sent", None),
            ("tag", "skipped", {"reason": "✗ not_tags"}),
        ):
            session.add(
                Execution(
                    enrollment_id=enrollment.id,
                    lead_id=enrollment.lead_id,
                    sequence_id=enrollment.sequence_id,
                    version=1,
                    step_id=step_id,
                    action_type="send_sms",
                    status=status,
                    due_at=TUESDAY,
                    started_at=TUESDAY,
                    finished_at=TUESDAY,
                    detail=detail,
                )
            )
        spec = spec_of(definition)
        slot = step_due(TUESDAY, spec.steps[2], spec, "America/New_York", "UTC")
        enrollment.step_id, enrollment.next_run_at = "check-in", slot.at


def test_explain_shows_every_candidate_and_check_and_the_winner(nurture, store):
    arrive(store, score="55", temperature="Warm")
    result = nurture("explain", "ana@example.com")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "Lead 1 Ana Ruiz: funnel web, score 55, temperature Warm"
    assert lines[1] == "Decision 2026-11-24 15:00 UTC: Welcome — the only matching sequence"
    assert lines[2:6] == [
        "  ✗ Hot only (priority 9, 1 condition)",
        "      ✗ lead_temperature: wants Hot, lead has 'Warm'",
        "  ✓ Welcome (priority 5, 1 condition)",
        "      ✓ lead_score: wants 40-100, lead has 55",
    ]
    assert "Welcome v1: active" in lines
    assert "  → hi                       next 2026-11-24 15:00 UTC" in lines


def test_explain_a_lead_without_a_match(nurture, store):
    arrive(store, score="10")
    result = nurture("explain", "1")
    assert (
        "Decision 2026-11-24 15:00 UTC: no sequence — no active sequence's trigger conditions hold"
        in result.stdout
    )
    assert "      ✗ lead_score: wants 40-100, lead has 10" in result.stdout


def test_explain_shows_step_states_and_why_the_next_step_waits(nurture, store):
    arrive(store, score="55", timezone="America/New_York")
    run_first_steps(store)
    data = json.loads(nurture("explain", "ana@example.com", "--json").stdout)
    [enrollment] = data["enrollments"]
    states = [(s["id"], s["state"], s["detail"]) for s in enrollment["steps"]]
    assert states == [
        ("hi", "sent", None),
        ("tag", "skipped", "✗ not_tags"),
        ("check-in", "next", None),
    ]
    upcoming = enrollment["next"]
    assert upcoming["step"] == "check-in"
    assert upcoming["at"].startswith("2026-11-27T14:00")  # Friday 9:00 in New York
    assert upcoming["why"][0] == "delay 2d after step tag (2026-11-24T15:00+00:00)"
    assert upcoming["why"][1] == "2026-11-26 is a holiday in US (Thanksgiving Day)"
    text = nurture("explain", "ana@example.com").stdout
    assert "  ↷ tag                      skipped 2026-11-24 15:00 UTC: ✗ not_tags" in text
    assert "  next: check-in 2026-11-27 14:00 UTC, because" in text


def test_explain_shows_a_send_waiting_to_be_settled_and_the_command_to_settle_it(nurture, store):
    arrive(store, score="55")
    with store.session() as session:
        enrollment_id = session.exec(select(Enrollment.id)).one()
    crash_mid_send(store, [enrollment_id], TUESDAY)
    data = json.loads(nurture("explain", "ana@example.com", "--json").stdout)
    command = f"nurture enrollments settle --enrollment {enrollment_id} --as sent|resend|stop"
    assert data["enrollments"][0]["settle"] == {
        "step": "hi",
        "attempt": 1,
        "since": "2026-11-24T15:00:00+00:00",
        "command": command,
    }
    text = nurture("explain", "ana@example.com").stdout.splitlines()
    assert any(
        line.startswith("  ? hi                       unknown 2026-11-24 15:01 UTC")
        for line in text
    )
    waiting = text.index(
        "  waiting to be settled: the send of step hi (attempt 1), of unclear fate since "
        "2026-11-24 15:00 UTC"
    )
    assert text[waiting + 1] == f"      did it go out? {command}"
    settled = nurture("enrollments", "settle", "--as", "sent", "-e", str(enrollment_id), "--yes")
    assert settled.exit_code == 0, settled.output
    after = nurture("explain", "ana@example.com").stdout
    assert "waiting to be settled" not in after and "  ✓ hi " in after
