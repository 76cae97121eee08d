"""`nurture stats SEQUENCE --by variant`: the figures against a reference computed here by
hand-checked numbers and independent formulas, the verdict, the JSON, the API and the report."""

import csv
import io
import json
from math import erfc, sqrt
from pathlib import Path

import pytest
from builders import sequence, write
from enrolling import T0
from scipy.stats import chi2_contingency
from serving import serving, token
from sqlalchemy import insert, select

from nurture.cli import output
from nurture.insights import significance as sig
from nurture.store.tables import Enrollment, Execution, Lead, Sequence

Z = 1.959963984540054  # the 97.5% point of the normal distribution


def wilson_by_hand(k: int, n: int) -> tuple[float, float]:
    """Wilson's score interval, written out (Newcombe 1998, method 3)."""
    p = k / n
    centre = p + Z**2 / (2 * n)
    spread = Z * sqrt(p * (1 - p) / n + Z**2 / (4 * n**2))
    return (centre - spread) / (1 + Z**2 / n), (centre + spread) / (1 + Z**2 / n)


def test_wilson_matches_the_formula():
    for k, n in [(0, 10), (1, 29), (81, 263), (15, 148), (40, 400), (400, 400)]:
        assert sig.wilson(k, n) == pytest.approx(wilson_by_hand(k, n), abs=1e-9)


def test_newcombe_matches_his_published_example():
    # Newcombe 1998, table II, example (a): 56/70 - 48/80 = 0.2000, method 10: 0.0524 to 0.3339
    low, high = sig.newcombe(control=(48, 80), variant=(56, 70))
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)


def test_the_z_test_matches_the_chi_square_test_without_correction():
    test = sig.compare((48, 80), (56, 70))
    assert test is not None and test.name == sig.Z_TEST
    pooled = 104 / 150
    z = (56 / 70 - 48 / 80) / sqrt(pooled * (1 - pooled) * (1 / 70 + 1 / 80))
    assert test.p_value == pytest.approx(erfc(abs(z) / sqrt(2)), rel=1e-9)
    chi2_p = chi2_contingency([[48, 32], [56, 14]], correction=False).pvalue
    assert test.p_value == pytest.approx(chi2_p, rel=1e-9)
    assert round(test.p_value, 4) == 0.0080  # by hand: z = 2.650


def test_small_counts_get_fishers_exact_test():
    test = sig.compare((3, 4), (1, 4))  # the lady tasting tea: two-sided p = 34/70
    assert test is not None and test.name == sig.FISHER
    assert test.p_value == pytest.approx(34 / 70)


def test_the_verdict_waits_for_the_minimum_sample_and_then_says_it_plainly():
    small = [sig.Arm("a", 312, 31), sig.Arm("b", 1_000, 130)]
    assert sig.verdict(small, {}, 1_000) == (
        "no winner yet: 312 of 1,000 leads per variant needed (a has the fewest)"
    )
    arms = [sig.Arm("a", 400, 40), sig.Arm("b", 400, 64)]
    tests = {"b": sig.compare(arms[0].counts, arms[1].counts)}
    assert sig.verdict(arms, tests, 100) == "b is better than a (p=0.012)"
    same = [sig.Arm("a", 400, 40), sig.Arm("b", 400, 44)]
    tests = {"b": sig.compare(same[0].counts, same[1].counts)}
    assert sig.verdict(same, tests, 100) == "no difference found: every p-value is 0.05 or more"
    worse = [sig.Arm("a", 400, 64), sig.Arm("b", 400, 40), sig.Arm("c", 400, 60)]
    tests = {arm.id: sig.compare(worse[0].counts, arm.counts) for arm in worse[1:]}
    assert sig.verdict(worse, tests, 100) == "a (the control) is better than b (p=0.012)"


COUNTS = {"a": (400, 40), "b": (400, 64)}
"""Fixed data: variant: (leads, conversions)."""


def _history(store, project: Path, run_store) -> None:
    """The sequence applied, and leads that ran its `guide` step by variant, some converted."""
    variants = [{"id": v, "weight": 1, "action_config": {"subject": v, "body": "Hi"}} for v in "ab"]
    guide = {"name": "Guide", "action_type": "send_email", "variants": variants}
    write(project, "guide.yaml", sequence("Guide", guide))
    assert run_store("apply", "--yes").exit_code == 0
    with store.begin() as connection:
        sequence_id = connection.execute(select(Sequence.__table__.c.id)).scalar_one()
        for variant, (leads, converted) in COUNTS.items():
            for index in range(leads):
                lead = connection.execute(
                    insert(Lead.__table__).values(
                        name="Sam",
                        first_name="Sam",
                        tags=[],
                        fields={},
                        opted_out=[],
                        created_at=T0,
                        updated_at=T0,
                    )
                ).inserted_primary_key[0]
                status = "converted" if index < converted else "completed"
                row = {"lead_id": lead, "sequence_id": sequence_id, "version": 1}
                enrollment_id = connection.execute(
                    insert(Enrollment.__table__).values(
                        row | {"status": status, "enrolled_at": T0, "updated_at": T0}
                    )
                ).inserted_primary_key[0]
                execution = row | {"enrollment_id": enrollment_id, "step_id": "guide"}
                execution |= {"action_type": "send_email", "status": "sent", "due_at": T0}
                execution |= {
                    "variant": variant,
                    "delivery_status": ("delivered", "read")[index % 2],
                }
                connection.execute(insert(Execution.__table__).values(execution))


@pytest.fixture
def history(store, project: Path, run_store, monkeypatch):
    monkeypatch.setattr(output.out, "width", 200)
    _history(store, project, run_store)
    return run_store


def test_stats_by_variant_gives_the_reference_figures(history):
    data = json.loads(history("stats", "guide", "--by", "variant", "--json").stdout)
    (experiment,) = data["experiments"]
    a, b = experiment["variants"]
    assert (a["variant"], a["leads"], a["conversions"]) == ("a", 400, 40)
    assert (b["variant"], b["leads"], b["conversions"], b["conversion_rate"]) == (
        "b",
        400,
        64,
        0.16,
    )
    assert a["conversion_interval"] == pytest.approx(wilson_by_hand(40, 400), abs=1e-4)
    assert b["conversion_interval"] == pytest.approx(wilson_by_hand(64, 400), abs=1e-4)
    (l1, u1), (l2, u2) = wilson_by_hand(40, 400), wilson_by_hand(64, 400)
    newcombe = (
        0.06 - sqrt((0.16 - l2) ** 2 + (u1 - 0.1) ** 2),
        0.06 + sqrt((u2 - 0.16) ** 2 + (0.1 - l1) ** 2),
    )
    assert b["difference"] == 0.06
    assert b["difference_interval"] == pytest.approx(newcombe, abs=1e-4)
    z = 0.06 / sqrt(0.13 * 0.87 * (2 / 400))
    assert b["p_value"] == pytest.approx(erfc(z / sqrt(2)), abs=1e-6)
    assert b["test"] == "two-proportion z-test"
    assert (b["delivered_rate"], b["read_rate"]) == (1.0, 0.5)
    assert experiment["verdict"] == "b is better than a (p=0.012)"
    assert experiment["min_sample"] == 100


def test_stats_by_variant_on_a_terminal_states_the_test_and_the_minimum(history, project):
    shown = history("stats", "guide", "--by", "variant").stdout
    assert "a (control)   400     40      10.0% (7.4%-13.3%)" in shown
    assert "+6.0 pts (+1.3 to +10.7)   0.012   two-proportion z-test" in shown
    assert "verdict: b is better than a (p=0.012)" in shown
    assert "a winner needs 100 leads per variant ([experiments] min_sample)" in shown
    (project / "nurture.toml").write_text(
        (project / "nurture.toml").read_text() + "\n[experiments]\nmin_sample = 1000\n"
    )
    shown = history("stats", "guide", "--by", "variant").stdout
    assert "no winner yet: 400 of 1,000 leads per variant needed (a has the fewest)" in shown


def test_by_variant_needs_a_sequence(history):
    result = history("stats", "--by", "variant")
    assert result.exit_code == 1
    assert "--by variant compares one sequence's variants: name the SEQUENCE" in result.stderr


def test_the_api_gives_the_same_figures_in_camel_case(history, project, store_url):
    with serving(project, store_url) as client:
        client.headers.update(token(history, "dashboard", "read"))
        answer = client.get("/api/nurturing-sequences/guide/stats", params={"by": "variant"})
        assert answer.status_code == 200, answer.text
        (experiment,) = answer.json()["experiments"]
        bad = client.get("/api/nurturing-sequences/guide/stats", params={"by": "colour"})
        assert bad.status_code == 422
    b = experiment["variants"][1]
    assert (b["leads"], b["conversions"], b["test"]) == (400, 64, "two-proportion z-test")
    assert b["differenceInterval"] == pytest.approx([0.013, 0.107], abs=1e-3)  # as the CLI shows
    assert experiment["verdict"] == "b is better than a (p=0.012)"
    cli = json.loads(history("stats", "guide", "--by", "variant", "--json").stdout)
    assert b["pValue"] == cli["experiments"][0]["variants"][1]["p_value"]


def test_the_html_report_shows_each_experiment(history, project):
    page = project / "report.html"
    assert history("report", "--html", str(page)).exit_code == 0
    html = page.read_text(encoding="utf-8")
    assert "<h3>Guide › guide</h3>" in html
    assert "<td>b</td>" in html and "+6.0 pts (+1.3 to +10.7)" in html
    assert "<strong>b is better than a (p=0.012)</strong>" in html


def test_csv_gives_one_row_per_variant(history):
    rows = list(
        csv.DictReader(io.StringIO(history("stats", "guide", "--by", "variant", "--csv").stdout))
    )
    assert [(row["step"], row["variant"], row["leads"]) for row in rows] == [
        ("guide", "a", "400"),
        ("guide", "b", "400"),
    ]
