"""Ending an experiment (promotion) and canary versions, as a user runs them: the plan says what
happens, in-flight leads keep their variant (or version), the rollout completes on `apply`."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from builders import sequence, step, write
from enrolling import drain
from scipy.stats import binomtest
from sqlalchemy import select

from nurture.channels.memory import MemoryChannel
from nurture.cli import output
from nurture.store.db import open_store
from nurture.store.tables import Enrollment, Execution, Lead, Sequence

OFFERS = {"a": "An offer", "b": "A better offer"}


def offer_step(*kept: str) -> dict:
    """The `offer` step (a day after `hello`): variants, or one config when one is kept."""
    configs = {v: {"subject": OFFERS[v], "body": "Hi {{ lead.name }}"} for v in OFFERS}
    if len(kept) == 1:
        return {"name": "Offer", "action_type": "send_email", "action_config": configs[kept[0]]}
    variants = [{"id": v, "weight": 1, "action_config": configs[v]} for v in kept]
    return {"name": "Offer", "action_type": "send_email", "variants": variants}


def offers(*kept: str, hello: str = "hello") -> dict:
    first = step("Hello", "send_email", action_config={"subject": hello, "body": "Hi"})
    return sequence("Offers", first, offer_step(*kept) | {"delay_days": 1}, funnels=["webinar"])


def import_leads(run_store, project: Path, first: int, count: int) -> None:
    rows = "\n".join(f"Lead {n},lead{n}@example.com" for n in range(first, first + count))
    (project / "leads.csv").write_text(f"Name,Email\n{rows}\n", encoding="utf-8")
    assert run_store("leads", "import", "leads.csv", "--funnel", "webinar").exit_code == 0


def soon(**delta: float) -> datetime:
    return datetime.now(UTC) + timedelta(**delta)


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch):
    monkeypatch.setattr(output.out, "width", 200)


def test_ending_an_experiment_keeps_in_flight_leads_on_their_variant(
    run_store, store_url: str, project: Path
):
    write(project, "offers.yaml", offers("a", "b"))
    assert run_store("apply", "--yes").exit_code == 0
    import_leads(run_store, project, 0, 200)
    channel = MemoryChannel()
    with open_store(store_url) as store:
        drain(store, soon(hours=1), channel)  # hello ran; offer is a day away
        with store.session() as session:
            drawn = dict(session.exec(select(Enrollment.lead_id, Enrollment.variants)).all())
    on_a = sum(1 for variants in drawn.values() if variants["offer"][0] == "a")
    assert 60 < on_a < 140
    write(project, "offers.yaml", offers("b"))  # b won: the file keeps it alone
    shown = run_store("plan").stdout
    assert (
        f"experiment on step offer ends: variant b kept; {on_a} leads in flight keep their "
        "variant until their step has run"
    ) in shown
    planned = json.loads(run_store("plan", "--json").stdout)["sequences"][0]["experiments"]
    assert planned == [
        {"step_id": "offer", "kind": "ends", "variants": ["b"], "removed": ["a"], "in_flight": on_a}
    ]
    assert run_store("apply", "--yes").exit_code == 0
    import_leads(run_store, project, 200, 20)  # after the experiment: no draw
    with open_store(store_url) as store:
        drain(store, soon(days=3), channel)
        drain(store, soon(days=6), channel)
        with store.session() as session:
            ran = session.exec(
                select(Execution.id, Execution.lead_id, Execution.variant, Lead.email)
                .join(Lead, Lead.id == Execution.lead_id)
                .where(Execution.step_id == "offer")
            ).all()
    subjects = {message.execution_id: message.subject for message in channel.sent}
    assert len(ran) == 220
    for execution_id, lead_id, variant, _ in ran:
        if lead_id in drawn:  # in flight at the end: its own variant, config and all
            assert variant == drawn[lead_id]["offer"][0]
            assert subjects[execution_id] == OFFERS[variant]
        else:
            assert variant is None and subjects[execution_id] == OFFERS["b"]
    assert run_store("plan").stdout.startswith("No changes.")


def test_plan_says_when_an_experiment_starts_and_changes(run_store, project: Path):
    write(project, "offers.yaml", offers("b"))
    assert run_store("apply", "--yes").exit_code == 0
    write(project, "offers.yaml", offers("a", "b"))
    assert "experiment on step offer starts: variants a, b" in run_store("plan").stdout
    assert run_store("apply", "--yes").exit_code == 0
    reweighted = offers("a", "b")
    reweighted["steps"][1]["variants"][0]["weight"] = 3
    write(project, "offers.yaml", reweighted)
    assert (
        "experiment on step offer: new weights (a 3, b 1) for new leads; the leads enrolled "
        "already keep their variant"
    ) in run_store("plan").stdout


def test_a_canary_takes_its_share_of_10000_new_leads(run_store, store_url: str, project: Path):
    write(project, "offers.yaml", offers("b"))
    assert run_store("apply", "--yes").exit_code == 0
    write(project, "offers.yaml", offers("b", hello="hello again"))
    applied = run_store("apply", "--yes", "--canary", "10%")
    assert applied.exit_code == 0, applied.output
    import_leads(run_store, project, 0, 10_000)
    with open_store(store_url) as store, store.session() as session:
        versions = session.exec(select(Enrollment.lead_id, Enrollment.version)).all()
    canary = sum(1 for _, version in versions if version == 2)
    assert len(versions) == 10_000 and binomtest(canary, 10_000, 0.1).pvalue > 0.001
    import_leads(run_store, project, 0, 10_000)  # the same leads again: nothing moves
    with open_store(store_url) as store, store.session() as session:
        assert sorted(session.exec(select(Enrollment.lead_id, Enrollment.version))) == sorted(
            versions
        )


def test_a_canary_runs_beside_the_current_version_until_apply_rolls_it_out(
    run_store, store_url: str, project: Path
):
    write(project, "offers.yaml", offers("b"))
    created = run_store("apply", "--yes", "--canary", "50%")
    assert "a new sequence has no current version to keep: each was applied whole" in created.stderr
    import_leads(run_store, project, 0, 10)  # in flight before the canary
    write(project, "offers.yaml", offers("b", hello="hello again"))
    bad = run_store("apply", "--yes", "--canary", "150%")
    assert bad.exit_code == 1 and "--canary '150%': give a share between 0% and 100%" in bad.stderr
    assert run_store("apply", "--yes", "--canary", "50%").exit_code == 0
    shown = run_store("plan").stdout
    assert "canary: version 2 gets 50% of new enrollments since" in shown
    assert "apply completes the rollout (every lead moves to it)" in shown
    status = run_store("status").stdout
    assert (
        "canary in progress: Offers v2 gets 50% of new enrollments (the others stay on v1)"
        in status
    )
    import_leads(run_store, project, 10, 60)
    channel = MemoryChannel()
    with open_store(store_url) as store:
        drain(store, soon(hours=1), channel)
        with store.session() as session:
            enrolled = dict(session.exec(select(Enrollment.lead_id, Enrollment.version)).all())
            ran = session.exec(
                select(Execution.id, Execution.lead_id, Execution.version).where(
                    Execution.step_id == "hello"
                )
            ).all()
    texts = {message.execution_id: message.subject for message in channel.sent}
    first = sorted(enrolled)[:10]
    assert all(enrolled[lead] == 1 for lead in first)  # in flight: stay on the old version
    assert 10 < sum(1 for version in enrolled.values() if version == 2) < 50
    for execution_id, lead_id, version in ran:
        assert version == enrolled[lead_id]
        assert texts[execution_id] == ("hello again" if version == 2 else "hello")
    on_canary = next(lead for lead, version in enrolled.items() if version == 2)
    email = f"lead{on_canary - 1}@example.com"  # lead ids count from 1, the CSV from 0
    assert "Offers v2 (canary): active" in run_store("explain", email).stdout
    data = json.loads(run_store("stats", "offers", "--by", "version", "--json").stdout)
    assert data["canary"]["version"] == 2 and data["canary"]["since"] is not None
    assert [row["variant"] for row in data["canary"]["variants"]] == ["v1", "v2"]
    assert data["canary"]["verdict"].startswith("no winner yet:")
    assert (
        "compared over the same weeks (enrolled since"
        in run_store("stats", "offers", "--by", "version").stdout
    )
    assert run_store("apply", "--yes").exit_code == 0  # the rollout
    assert run_store("plan").stdout.startswith("No changes.")
    with open_store(store_url) as store:
        with store.session() as session:
            versions = session.exec(select(Sequence.current_version, Sequence.canary_version))
            assert tuple(versions.one()) == (2, None)
        drain(store, soon(days=3), channel)
        drain(store, soon(days=6), channel)
        with store.session() as session:
            offered = session.exec(
                select(Execution.version).where(Execution.step_id == "offer")
            ).all()
    assert len(offered) == 70 and {row[0] for row in offered} == {2}  # all moved to the new one
