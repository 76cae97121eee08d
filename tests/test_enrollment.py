"""Enrollment: the best sequence of the lead's funnel, re-entry, conversion, the first step's time."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from builders import sequence, step, write
from sqlmodel import select

from nurture.leads.records import LeadInput, LeadRules, add_lead, convert, find_lead
from nurture.store.decisions import candidates_of
from nurture.store.tables import Enrollment, MatchDecision

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)  # a Wednesday
RULES = LeadRules()
WARM = {"lead_temperature": "Warm"}


@pytest.fixture
def nurture(run_store, project: Path):
    return run_store


def apply(nurture, project: Path, *docs: dict) -> None:
    for doc in docs:
        write(project, f"{doc['name'].lower().replace(' ', '-')}.yaml", doc)
    result = nurture("apply", "--yes")
    assert result.exit_code == 0, result.output


def arrive(store, funnel: str = "web", now: datetime = NOW, **lead):
    """A lead arrives through `funnel`: stored, matched, enrolled."""
    data = LeadInput(**({"name": "Ana Ruiz", "email": "ana@example.com"} | lead))
    with store.session(immediate=True) as session:
        arrival = add_lead(session, data, funnel, now, RULES)
        return arrival.decision, arrival.enrollment and arrival.enrollment.model_copy()


def enrollments(store) -> list[tuple[str, str]]:
    with store.session() as session:
        rows = session.exec(select(Enrollment).order_by(Enrollment.id)).all()
        return [(row.status, row.step_id) for row in rows]


def test_the_highest_priority_matching_sequence_wins(nurture, project, store):
    apply(
        nurture,
        project,
        sequence("Low", funnels=["web"], priority=1),
        sequence("High", step("First"), funnels=["web"], priority=9, trigger_conditions=WARM),
        sequence(
            "Higher but cold",
            funnels=["web"],
            priority=50,
            trigger_conditions={"lead_temperature": "Cold"},
        ),
    )
    decision, enrollment = arrive(store, temperature="warm")
    assert decision.winner.name == "High"
    assert decision.reason == "highest priority (9) of 2 matching"
    assert (enrollment.status, enrollment.step_id, enrollment.version) == ("active", "first", 1)
    assert enrollment.next_run_at == NOW and enrollment.attempts == 0


def test_most_conditions_then_name_break_ties(nurture, project, store):
    apply(
        nurture,
        project,
        sequence("Broad", funnels=["web"]),
        sequence("Narrow", funnels=["web"], trigger_conditions=WARM),
        sequence("Also narrow", funnels=["web"], trigger_conditions={"lead_source": "Ads"}),
    )
    assert arrive(store, temperature="Warm", source="Ads")[0].winner.name == "Also narrow"
    assert arrive(store, email="bo@example.com", temperature="Warm")[0].winner.name == "Narrow"


def test_an_inactive_sequence_takes_no_lead(nurture, project, store):
    apply(nurture, project, sequence("Paused", funnels=["web"], active=False))
    decision, enrollment = arrive(store)
    assert decision.winner is None and enrollment is None
    assert decision.reason == "every sequence of this funnel is inactive"


def test_no_match_is_recorded_with_every_candidates_checks(nurture, project, store):
    apply(
        nurture,
        project,
        sequence("Hot", funnels=["web"], trigger_conditions={"lead_temperature": "Hot"}),
    )
    arrive(store, temperature="Cold")
    with store.session() as session:
        [decision] = session.exec(select(MatchDecision)).all()
        session.expunge(decision)
        [candidate] = candidates_of(session.connection(), decision)
    assert decision.sequence_id is None
    assert decision.reason.startswith("no active sequence's trigger conditions hold")
    assert candidate["sequence"] == "Hot" and candidate["matches"] is False
    assert candidate["checks"] == [
        {"condition": "lead_temperature", "expected": "Hot", "actual": "'Cold'", "passed": False}
    ]
    assert enrollments(store) == []


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("never", [("stopped", "hello")]),
        ("after_exit", [("stopped", "hello"), ("active", "hello")]),
        ("always", [("stopped", "hello"), ("active", "hello"), ("active", "hello")]),
    ],
)
def test_re_entry_policies(nurture, project, store, policy, expected):
    apply(nurture, project, sequence("Welcome", funnels=["web"], re_entry=policy))
    arrive(store)
    with store.session(immediate=True) as session:
        session.exec(select(Enrollment)).one().status = "stopped"
    arrive(store)  # the same lead again (upserted by email), after it left
    arrive(store)  # and again, while the second enrollment (if any) is active
    assert enrollments(store) == expected
    with store.session() as session:
        reasons = session.exec(select(MatchDecision.reason).order_by(MatchDecision.id)).all()
    if policy == "never":
        assert reasons[1] == "already enrolled in Welcome before (re_entry: never)"
    if policy == "after_exit":
        assert reasons[2] == "still enrolled in Welcome (re_entry: after_exit)"


def test_conversion_stops_only_sequences_that_stop_on_conversion(nurture, project, store):
    apply(
        nurture,
        project,
        sequence("Pitch", funnels=["web"]),
        sequence("Onboarding", funnels=["clients"], stop_on_conversion=False),
    )
    arrive(store, funnel="web")
    arrive(store, funnel="clients")
    later = datetime(2026, 11, 26, tzinfo=UTC)
    with store.session(immediate=True) as session:
        stopped = convert(session, find_lead(session, "ana@example.com"), later, RULES)
    assert len(stopped) == 1
    with store.session() as session:
        rows = session.exec(select(Enrollment).order_by(Enrollment.id)).all()
        pitch, onboarding = rows
        assert (pitch.status, pitch.finished_at, pitch.next_run_at) == ("converted", later, None)
        assert pitch.exit_reason == "the lead converted"
        assert onboarding.status == "active"
        assert find_lead(session, "ana@example.com").status == "Converted"


def test_a_conversion_status_converts_through_the_cli(nurture, project, store):
    apply(nurture, project, sequence("Pitch", funnels=["web"]))
    arrive(store)
    result = nurture("leads", "update", "ana@example.com", "--status", "won")
    assert result.exit_code == 0 and "(converted)" in result.stderr
    assert enrollments(store) == [("converted", "hello")]


def test_the_first_step_waits_for_its_delay_and_the_send_window_in_the_leads_zone(
    nurture, project, store
):
    window = {"days": "mon-fri", "start": "09:00", "end": "17:00"}
    first = step("Welcome", delay_hours=2)
    apply(nurture, project, sequence("Welcome", first, funnels=["web"], send_window=window))
    friday_3pm_new_york = datetime(2026, 11, 27, 20, 0, tzinfo=UTC)
    _, enrollment = arrive(store, now=friday_3pm_new_york, timezone="America/New_York")
    # 15:00 + 2h is 17:00, the window has closed; the weekend is outside it: Monday 9:00 there.
    assert enrollment.next_run_at == datetime(2026, 11, 30, 14, 0, tzinfo=UTC)
    _, other = arrive(store, email="bo@example.com", now=friday_3pm_new_york, timezone="Asia/Tokyo")
    assert other.next_run_at == datetime(2026, 11, 30, 0, 0, tzinfo=UTC)  # Monday 9:00 in Tokyo


def test_plan_counts_in_flight_enrollments(nurture, project, store):
    apply(nurture, project, sequence("Welcome", funnels=["web"]))
    arrive(store)
    arrive(store, email="bo@example.com")
    write(project, "welcome.yaml", sequence("Welcome", step("Changed"), funnels=["web"]))
    result = nurture("plan")
    assert "~ update Welcome (sequences/welcome.yaml) (new version)" in result.stdout
    assert "      affects 2 in-flight enrollments" in result.stdout
    [change] = json.loads(nurture("plan", "--json").stdout)["sequences"]
    assert change["in_flight"] == 2


def test_deleting_a_sequence_stops_its_leads_in_flight(nurture, project, store):
    apply(nurture, project, sequence("Welcome", step("Hi"), funnels=["web"]))
    apply(nurture, project, sequence("Other", step("Hi"), funnels=["ads"]))
    _, welcomed = arrive(store, phone="+12025550100")
    _, other = arrive(store, funnel="ads", email="bo@example.com", phone="+12025550101")
    (project / "sequences" / "welcome.yaml").unlink()
    assert "      stops 1 in-flight enrollment" in nurture("plan", "--prune").stdout
    assert nurture("apply", "--prune", "--yes").exit_code == 0
    with store.session() as session:
        stopped, going = session.get(Enrollment, welcomed.id), session.get(Enrollment, other.id)
        assert (stopped.status, stopped.exit_reason, stopped.next_run_at) == (
            "stopped", "the sequence was deleted", None,
        )  # fmt: skip
        assert going.status == "active"
    ran = nurture("run", "--once", "--channel", "console", "--now", "2030-01-01T00:00:00Z")
    assert ran.exit_code == 0 and ran.stdout.count("[sms]") == 1  # only Other's lead hears
