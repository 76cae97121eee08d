"""`nurture funnels assign FUNNEL --split a=50,b=50`: a funnel's new leads divided between
sequences by weight, in the files and the store, each lead drawn once and for good."""

import json
from pathlib import Path

import yaml
from builders import sequence, step, write
from scipy.stats import binomtest
from sqlalchemy import func, select

from nurture.store.db import open_store
from nurture.store.tables import Enrollment, Sequence

LEADS = 10_000


def three(project: Path, **fields: object) -> None:
    for name in ("Alpha", "Beta", "Gamma"):
        hello = step("Hello", "send_email")
        write(project, f"{name.lower()}.yaml", sequence(name, hello, funnels=["webinar"], **fields))


def test_a_split_is_written_to_the_files_and_shown(run_store, project: Path):
    three(project)
    assert run_store("apply", "--yes").exit_code == 0
    result = run_store("funnels", "assign", "webinar", "--split", "alpha=30,beta=70")
    assert result.exit_code == 0, result.output
    assert 'split: {} → {"webinar": 30}' in result.stdout
    alpha = yaml.safe_load((project / "sequences" / "alpha.yaml").read_text())
    assert alpha["split"] == {"webinar": 30} and alpha["funnels"] == ["webinar"]
    (row,) = json.loads(run_store("funnels", "list", "--json").stdout)
    assert {s["name"]: s["split"] for s in row["sequences"]} == {
        "Alpha": 30,
        "Beta": 70,
        "Gamma": None,
    }
    assert run_store("plan").stdout.startswith("No changes.")
    run_store("funnels", "assign", "webinar", "--split", "beta=1,gamma=1")  # alpha leaves it
    assert "split" not in yaml.safe_load((project / "sequences" / "alpha.yaml").read_text())


def test_split_mistakes_are_named(run_store, project: Path):
    three(project)
    assert run_store("apply", "--yes").exit_code == 0
    for given, said in [
        ("alpha=50", "a split needs at least two sequences"),
        ("alpha=50,beta=0", "--split 'beta=0': give sequence=weight, a whole number above 0"),
        ("alpha=1,Alpha=2", "--split names 'Alpha' twice"),
        ("alpha=1,delta=1", "no sequence file for 'delta'"),
    ]:
        result = run_store("funnels", "assign", "webinar", "--split", given)
        assert result.exit_code == 1 and said in result.stderr, (given, result.stderr)
    write(project, "alpha.yaml", sequence("Alpha", split={"ads": 5}))
    assert (
        "alpha.yaml:4:3: ads: funnel 'ads' is in the split but not in `funnels`"
        in run_store("validate").stdout
    )


def test_10000_leads_are_split_by_weight_and_each_keeps_its_sequence(
    run_store, store_url: str, project: Path
):
    three(project, re_entry="always")
    assert run_store("apply", "--yes").exit_code == 0
    assert run_store("funnels", "assign", "webinar", "--split", "alpha=50,beta=50").exit_code == 0
    rows = "\n".join(f"Lead {n},lead{n}@example.com" for n in range(LEADS))
    (project / "leads.csv").write_text(f"Name,Email\n{rows}\n", encoding="utf-8")
    assert run_store("leads", "import", "leads.csv", "--funnel", "webinar").exit_code == 0
    with open_store(store_url) as store, store.session() as session:
        counted = dict(
            session.exec(
                select(Sequence.name, func.count())
                .join(Enrollment, Enrollment.sequence_id == Sequence.id)
                .group_by(Sequence.name)
            ).all()
        )
    assert set(counted) == {"Alpha", "Beta"}  # Gamma is outside the split and loses by name
    assert binomtest(counted["Alpha"], LEADS, 0.5).pvalue > 0.001
    # a lead posted again through the funnel (re_entry: always) draws the same sequence
    for n in range(5):
        again = run_store(
            "leads",
            "add",
            "--name",
            f"Lead {n}",
            "--email",
            f"lead{n}@example.com",
            "--funnel",
            "webinar",
            "--json",
        )
        assert again.exit_code == 0, again.output
    with open_store(store_url) as store, store.session() as session:
        per_lead = session.exec(
            select(Enrollment.lead_id, func.count(Enrollment.sequence_id.distinct()))
            .group_by(Enrollment.lead_id)
            .having(func.count() > 1)
        ).all()
    assert len(per_lead) == 5 and all(sequences == 1 for _, sequences in per_lead)
    said = run_store("explain", "lead0@example.com").stdout
    assert "funnel split: " in said and "(50 of 100)" in said
