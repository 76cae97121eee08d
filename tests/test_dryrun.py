"""The dry run: the real engine on a simulated clock, and the same timeline as the daemon's."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from builders import sequence, step, write
from enrolling import COACH, apply

from nurture.channels import KINDS
from nurture.channels.memory import MemoryChannel
from nurture.engine.daemon import Daemon, DaemonOptions
from nurture.engine.dispatch import EngineConfig
from nurture.insights.timeline import read
from nurture.leads.records import LeadRules, add_lead
from nurture.project.layout import Project as ProjectFiles
from nurture.simulate.dryrun import Project, Scenario, dry_run, lead_input
from nurture.simulate.events import Failures, InvalidEvent, happen, schedule
from nurture.spec.cases import CaseLead
from nurture.spec.templates import COACH_KEYS
from nurture.store.db import Store
from nurture.store.tables import Lead

MONDAY = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
WINDOW = {"days": "mon-fri", "start": "09:00", "end": "17:00", "holidays": "US"}


def drip(**fields) -> dict:
    """Hello now, a guide a day later (an email), a call task for hot leads, +10 score, a nudge."""
    return sequence(
        "Drip",
        step("Hello"),
        step("Guide", "send_email", delay_days=1),
        {
            "name": "Call",
            "action_type": "create_task",
            "action_config": {"title": "Call {{ lead.name }}"},
            "delay_days": 1,
            "conditions": {"lead_temperature": "Hot"},
        },  # fmt: skip
        step("Bump", "update_lead_score", delay_hours=2),
        step("Nudge", delay_days=2),
        funnels=["web"],
        send_window=WINDOW,
        retry_delay="15m",
        **fields,
    )


def project_of(path: Path) -> Project:
    files = ProjectFiles(path, path / "sequences", COACH_KEYS).files()
    return Project(files, path, LeadRules(), COACH)


def run(path: Path, *events: str, start: datetime = MONDAY, **lead) -> object:
    lead = {"name": "Ana Ruiz", "temperature": "Warm", "score": 40} | lead
    scenario = Scenario(lead_input(CaseLead(**lead)), start, "Drip", "web", events)
    return dry_run(project_of(path), scenario)


def steps(result) -> list[tuple[str, str, str]]:
    return [
        (r.at.strftime("%a %d %H:%M"), r.step, r.outcome) for r in result.rows if r.kind == "step"
    ]


def test_a_lead_gets_each_step_at_its_time_inside_the_send_window(project: Path):
    write(project, "drip.yaml", drip())
    result = run(project, start=datetime(2025, 3, 6, 16, 30, tzinfo=UTC))  # Thursday 16:30
    assert steps(result) == [
        ("Thu 06 16:30", "hello", "sent"),
        ("Fri 07 16:30", "guide", "sent"),
        ("Sat 08 16:30", "call", "skipped"),  # a task is no message: the window does not hold it
        ("Sat 08 18:30", "bump", "done"),
        ("Tue 11 09:00", "nudge", "sent"),  # Monday 18:30 is after the window: Tuesday 09:00
    ]
    nudge = result.rows[-2]
    assert nudge.notes == ("18:30 is after the send window closes (17:00)",)
    call = next(r for r in result.rows if r.step == "call")
    assert "lead_temperature: wants Hot, lead has 'Warm'" in call.notes[0]
    assert result.status == "completed" and result.lead["score"] == 45
    assert "Hi Ana, Hello" in result.rows[0].detail


def test_a_holiday_moves_a_message_to_the_next_open_day(project: Path):
    write(project, "drip.yaml", drip())
    result = run(project, start=datetime(2025, 5, 26, 10, 0, tzinfo=UTC))  # Memorial Day
    hello = result.rows[0]
    assert hello.at == datetime(2025, 5, 27, 9, 0, tzinfo=UTC)
    assert "holiday in US (Memorial Day)" in hello.notes[0]


def test_converting_stops_the_sequence_and_says_what_did_not_run(project: Path):
    write(project, "drip.yaml", drip())
    result = run(project, "+1d 1h convert")
    assert result.executed() == ["hello", "guide"]
    assert result.status == "converted"
    end = result.rows[-1]
    assert end.kind == "end" and end.notes == ("not run: call, bump, nudge",)
    event = next(r for r in result.rows if r.kind == "event")
    assert (
        event.at == MONDAY + timedelta(days=1, hours=1) and "stopped 1 enrollment" in event.notes[0]
    )


def test_a_failing_channel_is_retried_with_backoff_then_the_failure_policy_stops(project: Path):
    write(project, "drip.yaml", drip(max_retries=2, failure_policy="stop"))
    result = run(project, "+1h fail=send_email")
    guide = [(r.at - MONDAY, r.attempt, r.outcome) for r in result.rows if r.step == "guide"]
    day = timedelta(days=1)
    assert guide == [
        (day, 1, "retry"),
        (day + timedelta(minutes=15), 2, "retry"),
        (day + timedelta(minutes=45), 3, "failed"),  # 15m, then 30m: backoff 2
    ]
    assert result.status == "failed"
    assert result.rows[-1].notes == ("not run: call, bump, nudge",)


def test_a_failure_for_n_attempts_then_the_send_goes(project: Path):
    write(project, "drip.yaml", drip())
    result = run(project, "+0m fail=hello*1")
    sends = [(r.step, r.attempt, r.outcome) for r in result.rows if r.kind == "step"]
    assert sends[:2] == [
        ("hello", 1, "retry"),
        ("hello", 2, "sent"),
    ]


def test_opting_out_skips_that_channel_and_score_and_status_events_change_the_lead(project: Path):
    write(project, "drip.yaml", drip())
    result = run(project, "+1h opt-out=sms", "+2h score=+20", "+3h temperature=Hot")
    outcomes = {r.step: (r.outcome, r.notes) for r in result.rows if r.kind == "step"}
    assert outcomes["nudge"] == ("skipped", ("lead opted out of sms",))
    assert outcomes["call"][0] == "done"  # Hot by then
    assert result.lead["score"] == 40 + 20 + 5 and result.lead["opted_out"] == ["sms"]


def test_until_stops_the_clock_and_shows_what_is_next(project: Path):
    write(project, "drip.yaml", drip())
    result = dry_run(
        project_of(project),
        Scenario(lead_input(CaseLead(name="Ana")), MONDAY, "Drip", until=timedelta(hours=30)),
    )
    assert result.executed() == ["hello", "guide"]
    assert result.status == "pending" and result.rows[-1].step == "call"


def test_an_event_for_a_step_that_cannot_fail_is_refused(project: Path):
    write(project, "drip.yaml", drip())
    with pytest.raises(InvalidEvent, match="only sends go through a channel"):
        run(project, "+1h fail=bump")
    with pytest.raises(InvalidEvent, match="is not an event"):
        run(project, "tomorrow convert")


def test_the_funnel_picks_the_sequence_when_none_is_named(project: Path):
    write(project, "drip.yaml", drip(trigger_conditions={"lead_score": {"min": 50}}))
    write(project, "other.yaml", sequence("Other", step("Hi"), funnels=["web"]))
    dry = project_of(project)
    low = dry_run(dry, Scenario(lead_input(CaseLead(name="Al", score=10)), MONDAY, funnel="web"))
    high = dry_run(dry, Scenario(lead_input(CaseLead(name="Al", score=60)), MONDAY, funnel="web"))
    assert (low.chosen, low.sequence) == ("Other", "Other")
    assert high.chosen == "Drip" and high.executed()[0] == "hello"
    assert "most specific" in high.decision.reason


# One engine, two clocks: the daemon on a real store, ticking every 15 minutes as `nurture run`
# would, gives the dry run's timeline for the same lead and events.

RUNS = {
    "retry, condition, opt-out": (
        MONDAY,
        ("+1d fail=send_email*1", "+1d 3h temperature=Hot", "+3d opt-out=sms"),
    ),
    "holiday, conversion": (datetime(2025, 5, 26, 12, 0, tzinfo=UTC), ("+1d 6h convert",)),
}


@pytest.mark.parametrize("start, events", RUNS.values(), ids=RUNS.keys())
def test_the_daemon_and_the_dry_run_give_the_same_timeline(
    store: Store, project: Path, start: datetime, events: tuple[str, ...]
):
    apply(store, project, drip(), now=start)
    lead = CaseLead(name="Ana Ruiz", temperature="Warm", score=40, timezone="America/New_York")
    dry = dry_run(
        project_of(project), Scenario(lead_input(lead), start, funnel="web", events=events)
    )
    rules = LeadRules()
    with store.session(immediate=True) as session:
        lead_id = add_lead(session, lead_input(lead), "web", start, rules).lead.id
    failures = Failures()
    failures.know(project_of(project).files[0].spec)
    channel = MemoryChannel(behaviour=failures)
    clock = [start]
    daemon = Daemon(
        store,
        dict.fromkeys(KINDS, channel),
        DaemonOptions(EngineConfig(in_flight=1, coach=COACH)),
        lambda: clock[0],
        print,
    )
    pending = schedule(list(events), start)
    while clock[0] <= start + timedelta(days=8):
        while pending and pending[0].at <= clock[0]:
            with store.session(immediate=True) as session:
                happen(session, session.get(Lead, lead_id), pending.pop(0), rules, failures)
        daemon.drain()
        clock[0] += timedelta(minutes=15)
    with store.session() as session:
        messages = {m.execution_id: m for m in channel.attempts}
        daemon_rows = read(session, lead_id, "UTC", messages)
    dry_rows = [row for row in dry.rows if row.kind != "event"]
    assert daemon_rows == dry_rows
    assert dry_rows[0].notes and dry_rows[-1].kind == "end"  # moved by the window; ended
