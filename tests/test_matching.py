"""Matching rules: which sequence a lead gets, and why (nurture.rules.matching)."""

from dataclasses import dataclass, field
from typing import Any

from nurture.rules.matching import Candidate, check_conditions, choose
from nurture.spec.conditions import StepConditions, TriggerConditions


@dataclass
class Lead:
    source: str | None = "Web Form"
    status: str | None = "New"
    temperature: str | None = "Warm"
    score: int = 50
    tags: list[str] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)


def candidate(name: str, priority: int = 0, active: bool = True, **conditions: Any) -> Candidate:
    return Candidate(name, priority, active, TriggerConditions(**conditions))


def test_highest_priority_wins():
    decision = choose([candidate("Low", 1), candidate("High", 9)], Lead())
    assert decision.winner.name == "High"
    assert decision.reason == "highest priority (9) of 2 matching"


def test_at_equal_priority_the_most_specific_wins():
    general = candidate("General", 5, lead_status="new")
    specific = candidate("Specific", 5, lead_status="New", lead_temperature=["Warm", "Hot"])
    decision = choose([general, specific], Lead())
    assert decision.winner.name == "Specific"
    assert decision.reason == "most specific (2 conditions) at priority 5"


def test_then_the_name_decides():
    decision = choose([candidate("beta"), candidate("Alpha")], Lead())
    assert decision.winner.name == "Alpha"
    assert decision.reason.startswith("first by name")


def test_an_inactive_sequence_never_wins_but_is_shown():
    decision = choose([candidate("Off", 100, active=False), candidate("On")], Lead())
    assert decision.winner.name == "On"
    assert [(v.candidate.name, v.matches) for v in decision.verdicts] == [
        ("Off", False),
        ("On", True),
    ]


def test_no_match_says_why():
    assert choose([], Lead()).reason == "no sequence is assigned to this funnel"
    assert choose([candidate("Off", active=False)], Lead()).reason == (
        "every sequence of this funnel is inactive"
    )
    decision = choose([candidate("Hot only", lead_temperature="Hot")], Lead())
    assert decision.winner is None
    assert decision.reason == (
        "no active sequence's trigger conditions hold: "
        "✗ lead_temperature: wants Hot, lead has 'Warm'"
    )


def test_strings_match_ignoring_case_and_scores_include_both_ends():
    conditions = TriggerConditions(lead_source=["web form"], lead_score={"min": 50, "max": 60})
    assert all(check.passed for check in check_conditions(conditions, Lead()))
    assert not all(c.passed for c in check_conditions(conditions, Lead(score=61)))


def test_a_missing_value_fails_and_shows_none():
    [check] = check_conditions(TriggerConditions(lead_source="Ads"), Lead(source=None))
    assert not check.passed and str(check) == "✗ lead_source: wants Ads, lead has none"


def test_step_conditions_check_tags_and_custom_fields():
    conditions = StepConditions(tags=["vip"], not_tags=["client"], fields={"goal": ["Strength"]})
    lead = Lead(tags=["VIP"], fields={"goal": "strength"})
    assert [c.passed for c in check_conditions(conditions, lead)] == [True, True, True]
    client = Lead(tags=["vip", "client"], fields={})
    assert [c.passed for c in check_conditions(conditions, client)] == [True, False, False]
