"""Engagement in the figures, on fixed data: `stats` per step and per sequence, the report, the
API's stats, `logs --events`, `explain` and `leads show`."""

import json
from datetime import timedelta

from builders import sequence, step
from enrolling import T0, apply, drain, enroll, executions, lead_of

from nurture.channels.memory import MemoryChannel
from nurture.leads.engagement import Happened, record

STEPS = [
    step("Hello"),
    step("Offer", "send_email", delay_days=1),
    step("Last", conditions={"clicked": ["offer"]}, delay_days=1),
]


def happened(store, enrolled: int, step_id: str, *kinds: str, at=T0 + timedelta(days=2)) -> None:
    """Events on the message of `step_id`, as the callbacks and /c/ record them."""
    [sent] = [x for x in executions(store, enrolled) if x.step_id == step_id]
    with store.begin(immediate=True) as connection:
        for kind in kinds:
            record(connection, Happened(sent.lead_id, kind, at, f"{kind}:{sent.id}", sent))


def history(store, project) -> list[int]:
    """Four leads: Ana got, read and clicked; Ben got and read; Cat got; Dan's email bounced."""
    apply(store, project, sequence("Offers", *STEPS))
    names = ("Ana", "Ben", "Cat", "Dan")
    ids = [enroll(store, "Offers", name=n, email=f"{n.lower()}@example.com") for n in names]
    channel = MemoryChannel()
    drain(store, T0, channel)
    drain(store, T0 + timedelta(days=1), channel)
    happened(store, ids[0], "hello", "delivered", "read")
    happened(store, ids[0], "offer", "clicked")
    happened(store, ids[1], "hello", "delivered", "read", "read")  # a read reported twice
    happened(store, ids[2], "hello", "delivered")
    happened(store, ids[3], "offer", "bounced")
    drain(store, T0 + timedelta(days=2, hours=1), channel)
    return ids


def test_stats_show_each_steps_engagement_and_the_share_of_leads_who_engaged(
    store, project, run_store
):
    history(store, project)
    data = json.loads(run_store("stats", "offers", "--json").stdout)
    [summary] = data["summary"]
    assert (summary["engaged"], summary["engaged_rate"]) == (2, 0.5)  # Ana and Ben
    steps = {row["step_id"]: row for row in data["steps"]}
    hello, offer, last = steps["hello"], steps["offer"], steps["last"]
    assert (hello["succeeded"], hello["delivered"], hello["read"]) == (4, 3, 2)
    assert (hello["delivered_rate"], hello["read_rate"], hello["clicked_rate"]) == (0.75, 0.5, 0.0)
    assert (offer["clicked"], offer["clicked_rate"], offer["bounced_rate"]) == (1, 0.25, 0.25)
    assert (last["succeeded"], last["skipped"]) == (1, 3)  # only Ana clicked the offer
    shown = run_store("stats", "offers").stdout
    assert "Engagement (share of messages sent)" in shown
    hello_line = next(line for line in shown.splitlines() if line.split()[:2] == ["hello", "4"])
    assert hello_line.split()[2:5] == ["75.0%", "50.0%", "0.0%"]
    overview = run_store("stats").stdout
    assert next(line for line in overview.splitlines() if "Offers" in line).split()[-1] == "50.0%"


def test_the_report_api_logs_and_explain_carry_the_events(store, project, run_store, tmp_path):
    ids = history(store, project)
    page = tmp_path / "report.html"
    assert run_store("report", "--html", str(page)).exit_code == 0
    html = page.read_text()
    assert "Engagement per step" in html and "<td>75.0%</td><td>50.0%</td>" in html
    logged = json.loads(run_store("logs", "--events", "--json").stdout)
    assert [e["kind"] for e in logged].count("read") == 2 and len(logged) == 7
    clicked = json.loads(run_store("logs", "--events", "--status", "clicked", "--json").stdout)
    assert [(e["lead"], e["step_id"]) for e in clicked] == [("Ana", "offer")]
    wrong = run_store("logs", "--events", "--status", "clicks")
    assert wrong.exit_code == 1 and "did you mean 'clicked'" in wrong.stderr
    ana = str(lead_of(store, ids[0]).id)
    explained = run_store("explain", ana).stdout
    assert "Engagement: score" in explained and "clicked on offer" in explained
    shown = json.loads(run_store("leads", "show", ana, "--json").stdout)
    assert [e["kind"] for e in shown["engagement"]] == ["delivered", "read", "clicked"]
    assert shown["engagement_score"] == 0.0  # events of 2025: their weight has halved 45 times
