"""Figures from known histories (tests/histories.py), exact, on SQLite and Postgres."""

from datetime import timedelta

import histories
import pytest
from builders import sequence, step
from enrolling import T0, apply, drain, enroll
from sqlmodel import select

from nurture.insights.channel_stats import channel_figures
from nurture.insights.stats import funnel_figures, sequence_figures
from nurture.insights.step_stats import step_figures
from nurture.leads.records import LeadInput, LeadRules, add_lead
from nurture.rules.periods import BadWindow, Window, parse_when
from nurture.store.tables import Funnel, Sequence


def figures(store, **options):
    with store.session() as session:
        return sequence_figures(session, Window(), **options)


def steps_of(store, name, window=Window(), **options):
    with store.session() as session:
        sequence_id = session.exec(select(Sequence.id).where(Sequence.name == name)).one()
        return step_figures(session, sequence_id, window, **options)


def test_per_sequence_outcomes_rates_and_times(store, project):
    histories.build(store, project)
    short, welcome = figures(store)
    assert welcome == {
        "sequence": "Welcome", "assigned": 6, "active": 0, "completed": 5, "converted": 1,
        "stopped": 0, "failed": 0, "unknown": 0, "conversion_rate": 0.1667,
        # four after 26h, Fay after 27h: mean 26h12m, median 26h
        "avg_completion_seconds": 94320.0, "median_completion_seconds": 93600.0,
        "avg_conversion_seconds": 3600.0,  # Cat converted 1h in
        "engaged": 1, "engaged_rate": 0.1667,  # Cat's conversion is an engagement event
    }  # fmt: skip
    # 0, 0, 1h, 2h: the median of an even count is the mean of the middle two
    assert short["avg_completion_seconds"] == 2700.0
    assert short["median_completion_seconds"] == 1800.0
    assert (short["assigned"], short["completed"], short["conversion_rate"]) == (4, 4, 0.0)


def test_per_step_outcomes_attempts_lag_dropoff_and_reasons(store, project):
    histories.build(store, project)
    hello, tip, nudge = steps_of(store, "Welcome")
    assert [s["step_id"] for s in (hello, tip, nudge)] == ["hello", "tip", "nudge"]
    figures_of = ("reached", "executed", "succeeded", "failed", "skipped", "retried")
    assert [hello[key] for key in figures_of] == [6, 7, 5, 0, 1, 1]
    assert [tip[key] for key in figures_of] == [5, 5, 4, 1, 0, 0]
    assert [nudge[key] for key in figures_of] == [5, 5, 3, 0, 2, 0]
    assert (hello["success_rate"], tip["success_rate"], nudge["success_rate"]) == (1.0, 0.8, 1.0)
    assert hello["avg_attempts"] == 1.2  # Fay needed two
    assert (hello["avg_lag_seconds"], nudge["avg_lag_seconds"]) == (0.0, 600.0)  # Fay 50m late
    assert [s["reached_rate"] for s in (hello, tip, nudge)] == [1.0, 0.8333, 0.8333]
    assert [s["dropped"] for s in (hello, tip, nudge)] == [0, 1, 0]
    assert hello["skip_reasons"] == [{"reason": "lead opted out of sms", "count": 1}]
    assert tip["failure_reasons"] == [{"reason": "no email address", "count": 1}]
    assert nudge["skip_reasons"] == [
        {"reason": "conditions not met: ✗ not_tags: wants none of client", "count": 1},
        {"reason": "lead opted out of sms", "count": 1},
    ]


def test_per_channel_totals_and_days(store, project):
    histories.build(store, project)
    with store.session() as session:
        email, sms = channel_figures(session, Window())
    assert email == {
        "channel": "email", "sent": 4, "failed": 1, "opted_out": 0,
        "by_day": [{"day": "2025-03-03", "sent": 4, "failed": 1, "opted_out": 0}],
    }  # fmt: skip
    assert (sms["sent"], sms["failed"], sms["opted_out"]) == (12, 0, 2)
    assert sms["by_day"] == [
        {"day": "2025-03-03", "sent": 8, "failed": 0, "opted_out": 1},
        {"day": "2025-03-04", "sent": 4, "failed": 0, "opted_out": 1},
    ]


def test_a_window_picks_enrollments_by_start_and_executions_by_run_time(store, project):
    histories.build(store, project)
    later = Window(since=T0 + timedelta(hours=12))
    with store.session() as session:
        rows = sequence_figures(session, later)
        channels = channel_figures(session, later)
    by_name = {row["sequence"]: row for row in rows}
    assert by_name["Short"]["assigned"] == 1  # Jo, enrolled a day in
    assert by_name["Welcome"]["assigned"] == 0  # shown, with zeros
    assert [c["channel"] for c in channels] == ["sms"] and channels[0]["sent"] == 4
    nudge = steps_of(store, "Welcome", later)[2]
    assert (nudge["reached"], nudge["succeeded"]) == (5, 3)
    until = Window(until=T0 + timedelta(hours=1))
    assert steps_of(store, "Welcome", until)[0]["executed"] == 7


def versions_history(store, project):
    """v1: 2 leads complete both steps; v2 adds a step: 3 leads, one converted before its end."""
    two = sequence("Offer", step("Hello"), step("Bye", delay_hours=1))
    apply(store, project, two)
    for n in range(2):
        enroll(store, "Offer", name=f"Old {n}")
    drain(store, T0)
    drain(store, T0 + timedelta(hours=1))
    three = sequence(
        "Offer", step("Hello"), step("Bye", delay_hours=1), step("Last", delay_hours=1)
    )
    apply(store, project, three, now=T0 + timedelta(hours=2))
    later = T0 + timedelta(days=1)
    ids = [enroll(store, "Offer", now=later, name=f"New {n}") for n in range(3)]
    drain(store, later)
    histories._convert(store, _lead_id(store, ids[0]), later + timedelta(minutes=30))
    drain(store, later + timedelta(hours=1))
    drain(store, later + timedelta(hours=2))


def _lead_id(store, enrollment_id):
    from enrolling import lead_of

    return lead_of(store, enrollment_id).id


def test_by_version_compares_outcomes_and_dropoff(store, project):
    versions_history(store, project)
    v1, v2 = figures(store, by_version=True)
    assert (v1["version"], v1["assigned"], v1["completed"], v1["converted"]) == (1, 2, 2, 0)
    assert v1["avg_completion_seconds"] == 3600.0
    assert (v2["version"], v2["assigned"], v2["completed"], v2["converted"]) == (2, 3, 2, 1)
    assert (v2["conversion_rate"], v2["median_completion_seconds"]) == (0.3333, 7200.0)
    rows = steps_of(store, "Offer", by_version=True)
    reach = [(row["version"], row["step_id"], row["reached"]) for row in rows]
    assert reach == [
        (1, "hello", 2), (2, "hello", 3), (1, "bye", 2), (2, "bye", 2), (2, "last", 2),
    ]  # fmt: skip
    assert [row["reached_rate"] for row in rows if row["version"] == 2] == [1.0, 0.6667, 0.6667]


def test_per_funnel_leads_in_matched_by_sequence_and_why_not(store, project):
    warm = sequence(
        "Warm", funnels=["Website Form"], trigger_conditions={"lead_score": {"min": 40}}
    )
    cold = sequence(
        "Cold",
        funnels=["Website Form", "Instagram"],
        trigger_conditions={"lead_temperature": "Cold"},
    )
    apply(store, project, warm, cold)
    arrivals = [("website-form", "Warm", 50)] * 3 + [("website-form", "Cold", 10)]
    arrivals += [("website-form", "Warm", 10)] * 2 + [("instagram", "Warm", 50)]
    with store.session(immediate=True) as session:
        for number, (funnel, temperature, score) in enumerate(arrivals):
            data = LeadInput(name=f"Lead {number}", temperature=temperature, score=score)
            add_lead(session, data, funnel, T0, LeadRules())
    with store.session() as session:
        instagram, website = funnel_figures(session, Window())
    no_cold = "no active sequence's trigger conditions hold: ✗ lead_temperature: wants Cold"
    # the two website leads failed Warm on their score, and Cold on their temperature: both show
    no_match = no_cold + "; ✗ lead_score: wants 40-100"
    assert website == {
        "funnel": "Website Form", "leads_in": 6, "matched": 4, "unmatched": 2,
        "match_rate": 0.6667,
        "by_sequence": [{"sequence": "Warm", "leads": 3}, {"sequence": "Cold", "leads": 1}],
        "unmatched_reasons": [{"reason": no_match, "leads": 2}],
    }  # fmt: skip
    with store.session() as session:
        website_id = session.exec(select(Funnel.id).where(Funnel.slug == "website-form")).one()
        only_website = sequence_figures(session, Window(), funnel_id=website_id)
        warm_id = session.exec(select(Sequence.id).where(Sequence.name == "Warm")).one()
        warm_steps = step_figures(session, warm_id, Window(), funnel_id=website_id + 1000)
    assert [(row["sequence"], row["assigned"]) for row in only_website] == [
        ("Cold", 1),
        ("Warm", 3),
    ]
    assert warm_steps[0]["reached"] == 0  # no lead came through that funnel
    assert instagram == {
        "funnel": "Instagram", "leads_in": 1, "matched": 0, "unmatched": 1, "match_rate": 0.0,
        "by_sequence": [], "unmatched_reasons": [{"reason": no_cold, "leads": 1}],
    }  # fmt: skip


def test_since_and_until_take_durations_dates_and_times():
    assert parse_when("7d", T0) == T0 - timedelta(days=7)
    assert parse_when("2025-03-01", T0).isoformat() == "2025-03-01T00:00:00+00:00"
    assert parse_when("2025-03-01T10:00:00+02:00", T0).isoformat() == "2025-03-01T08:00:00+00:00"
    with pytest.raises(BadWindow, match="--since 'last week': use a duration"):
        parse_when("last week", T0)


def test_by_version_never_reaches_more_than_it_assigned(store, project):
    histories.moved(store, project)
    versions = {row["version"]: row["assigned"] for row in figures(store, by_version=True)}
    rows = steps_of(store, "Offer", by_version=True)
    for row in rows:
        assert row["reached"] <= versions[row["version"]], row
    reach = [(row["version"], row["step_id"], row["reached"], row["removed"]) for row in rows]
    assert versions == {1: 1, 2: 3}  # Old 1 is on v2 now: its whole run counts there
    assert reach == [  # in v2's order, v1's removed guide after the hello it followed
        (1, "hello", 1, False), (2, "hello", 3, False),
        (1, "guide", 1, True),
        (2, "tip", 2, False),
        (1, "bye", 1, False), (2, "bye", 3, False),
    ]  # fmt: skip


def test_a_reason_names_every_check_that_failed_without_the_leads_values(store, project):
    picky = sequence(
        "Picky",
        step("Hello", conditions={"lead_score": {"min": 50}, "tags": ["vip"]}),
        step("Bye"),
    )
    apply(store, project, picky)
    enroll(store, "Picky", name="Low", score=10)
    enroll(store, "Picky", name="Lower", score=5)
    enroll(store, "Picky", name="Vip", score=10, tags=["vip"])
    drain(store, T0)
    hello = steps_of(store, "Picky")[0]
    assert hello["skip_reasons"] == [
        {"reason": "conditions not met: ✗ lead_score: wants 50-100; ✗ tags: wants all of vip",
         "count": 2},
        {"reason": "conditions not met: ✗ lead_score: wants 50-100", "count": 1},
    ]  # fmt: skip
