"""A/B tests of a step: variants in the file, checked by validate, drawn by weight, sticky,
recorded with the execution, shown by explain and the dry run, pinned by `nurture test`."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import yaml
from builders import sequence, write
from enrolling import T0, drain
from scipy.stats import binomtest
from serving import serving, token
from sqlalchemy import select

from nurture.channels.memory import MemoryChannel
from nurture.leads.enrollment import Offer, new_enrollment
from nurture.rules import experiments
from nurture.rules.matching import Candidate
from nurture.spec.models import SequenceSpec
from nurture.spec.schema import sequence_json_schema
from nurture.store.db import open_store
from nurture.store.tables import Enrollment, Execution

LEADS = 10_000


def email_step(name: str, *subjects: str, **fields: object) -> dict:
    """An email step whose variants a, b, ... differ in their subject, equal weights."""
    variants = [
        {
            "id": chr(ord("a") + index),
            "weight": 1,
            "action_config": {"subject": subject, "body": "Hello {{ lead.name }}"},
        }
        for index, subject in enumerate(subjects)
    ]
    return {"name": name, "action_type": "send_email", "variants": variants, **fields}


GUIDE = sequence(
    "Guide",
    email_step("Guide", "Your free guide", "{{ lead.first_name }}, your guide"),
    email_step("Offer", "An offer", "A better offer", delay_days=1),
    funnels=["webinar"],
)


def csv_of(count: int) -> str:
    rows = [f"Lead {n},lead{n}@example.com" for n in range(count)]
    return "Name,Email\n" + "\n".join(rows) + "\n"


def test_validate_checks_every_variant_with_its_line(run, project: Path):
    write(
        project,
        "guide.yaml",
        """\
name: Guide
steps:
  - name: Guide
    action_type: send_email
    variants:
      - id: a
        weight: 50
        action_config: {subject: "Hi", body: "Hello {{ lead.nam }}"}
      - id: a
        weight: 50
        action_config: {subject: "Hey", body: "Hello"}
  - name: Call
    action_type: create_task
    variants:
      - id: Bad Id
        weight: 0
        action_config: {title: "Call"}
""",
    )
    result = run("validate")
    assert result.exit_code == 1
    assert result.stdout.splitlines()[:4] == [
        "sequences/guide.yaml:8:56: body: unknown template variable 'lead.nam' (did you mean "
        "'lead.name'?)",
        "sequences/guide.yaml:9:9: id: duplicate variant id 'a' (also variant 1)",
        "sequences/guide.yaml:15:9: id: String should match pattern '^[a-z0-9][a-z0-9_-]*$' "
        "(found 'Bad Id')",
        "sequences/guide.yaml:16:9: weight: Input should be greater than 0 (found 0)",
    ]
    write(project, "guide.yaml", sequence("Guide", email_step("Guide", "Hi")))
    assert "variants: an experiment needs at least two variants" in run("validate").stdout


def test_a_step_with_variants_takes_no_config_of_its_own(run, project: Path):
    guide = email_step("Guide", "A", "B") | {"action_config": {"subject": "C", "body": "D"}}
    write(project, "guide.yaml", sequence("Guide", guide))
    result = run("validate")
    assert "variants: a step with variants takes no action_config of its own" in result.stdout


def test_a_50_50_split_of_10000_leads_is_within_binomial_bounds():
    spec = SequenceSpec.model_validate(GUIDE)
    offer = Offer(1, 1, spec, Candidate("Guide", 0, True, spec.trigger_conditions))
    drawn = [new_enrollment(lead, None, offer, T0, "UTC")["variants"] for lead in range(LEADS)]
    for step_id in ("guide", "offer"):
        b = sum(1 for variants in drawn if variants[step_id][0] == "b")
        assert binomtest(b, LEADS, 0.5).pvalue > 0.001, (step_id, b)
    # the two steps are separate experiments: one's draw tells nothing of the other's
    both = sum(1 for v in drawn if v["guide"][0] == v["offer"][0])
    assert binomtest(both, LEADS, 0.5).pvalue > 0.001


def test_weights_give_their_shares():
    arms = [("a", 90), ("b", 10)]
    b = sum(experiments.arm(lead, "step:x:y", arms) == "b" for lead in range(LEADS))
    assert binomtest(b, LEADS, 0.1).pvalue > 0.001


def test_imported_leads_draw_by_weight_keep_it_across_versions_and_restarts(
    run_store, store_url: str, project: Path
):
    write(project, "guide.yaml", GUIDE)
    assert run_store("apply", "--yes").exit_code == 0
    (project / "leads.csv").write_text(csv_of(LEADS), encoding="utf-8")
    assert run_store("leads", "import", "leads.csv", "--funnel", "webinar").exit_code == 0
    with open_store(store_url) as store, store.session() as session:
        enrollments = session.exec(select(Enrollment.lead_id, Enrollment.variants)).all()
    drawn = {lead_id: variants for lead_id, variants in enrollments}
    b = sum(1 for variants in drawn.values() if variants["guide"] == ["b", 1])
    assert len(drawn) == LEADS and binomtest(b, LEADS, 0.5).pvalue > 0.001
    # a new version changes variant b's text: in-flight leads keep their variants
    changed = json.loads(json.dumps(GUIDE))
    changed["steps"][1]["variants"][1]["action_config"]["subject"] = "The best offer"
    write(project, "guide.yaml", changed)
    assert run_store("apply", "--yes").exit_code == 0
    channel = MemoryChannel()
    with open_store(store_url) as store:  # a daemon
        drain(store, datetime.now(UTC) + timedelta(hours=1), channel)
    with open_store(store_url) as store:  # restarted
        drain(store, datetime.now(UTC) + timedelta(days=2), channel)
        with store.session() as session:
            ran = session.exec(select(Execution.lead_id, Execution.step_id, Execution.variant))
            ran = ran.all()
    assert len(ran) == 2 * LEADS
    assert all(drawn[lead_id][step_id][0] == variant for lead_id, step_id, variant in ran)
    subjects = {m.subject for m in channel.sent}
    assert subjects >= {"Your free guide", "The best offer", "An offer"}
    assert "A better offer" not in subjects  # every lead that runs `offer` runs version 2's b


def test_the_dry_run_says_which_variant_and_test_pins_one(run, project: Path):
    write(project, "guide.yaml", GUIDE)
    result = run("test", "guide", "--lead-field", "name=Ana Diaz", "--json")
    data = json.loads(result.stdout)
    notes = [row["notes"] for row in data["timeline"] if row["kind"] == "step"]
    assert all(any(note.startswith("variant ") for note in ran) for ran in notes)
    pinned = run("test", "guide", "--lead-field", "name=Ana Diaz", "--variant", "guide=b", "--json")
    first = json.loads(pinned.stdout)["timeline"][0]
    assert first["message"]["subject"] == "Ana, your guide" and "variant b" in first["notes"]
    wrong = run("test", "guide", "--lead-field", "name=Ana", "--variant", "guide=c")
    assert wrong.exit_code == 1
    assert "--variant guide=c: step 'guide' has no variant 'c' (it has a, b)" in wrong.stderr


def test_a_test_case_pins_a_variant(run, project: Path):
    case = {
        "name": "b is personal",
        "lead": {"name": "Ana Diaz"},
        "variants": {"guide": "b"},
        "expect": {"contains": {"guide": "Ana, your guide"}},
    }
    write(project, "guide.yaml", GUIDE | {"tests": [case]})
    assert run("test").exit_code == 0
    case["variants"] = {"guide": "z"}
    write(project, "guide.yaml", GUIDE | {"tests": [case]})
    result = run("validate")
    assert "guide.yaml:38:5: guide: step 'guide' has no variant 'z' (it has a, b)" in result.stdout


def test_explain_shows_the_variant_run_and_the_one_drawn(run_store, store, project: Path):
    write(project, "guide.yaml", GUIDE)
    assert run_store("apply", "--yes").exit_code == 0
    added = run_store(
        "leads", "add", "--name", "Ana", "--email", "ana@example.com", "--funnel", "webinar"
    )
    assert added.exit_code == 0
    with store.session() as session:
        lead_id, drawn = session.exec(select(Enrollment.lead_id, Enrollment.variants)).one()
    guide = drawn["guide"][0]
    assert guide == experiments.arm(lead_id, "step:guide:guide", [("a", 1), ("b", 1)])
    drain(store, datetime.now(UTC) + timedelta(hours=1))
    explained = run_store("explain", "ana@example.com").stdout
    assert f"[variant {guide}, ran]" in explained
    assert f"[variant {drawn['offer'][0]}, drawn at enrollment (v1)]" in explained
    (logged,) = json.loads(run_store("logs", "--json").stdout)
    assert (logged["step_id"], logged["variant"]) == ("guide", guide)


def test_the_guides_example_validates_and_passes_its_test_case(run, project: Path):
    guide = Path(__file__).parent.parent / "docs" / "guides" / "experiments.md"
    example = guide.read_text(encoding="utf-8").split("```yaml\n", 1)[1].split("```", 1)[0]
    (project / "sequences" / "guide-offer.yaml").write_text(example, encoding="utf-8")
    validated = run("validate", "--strict")
    assert validated.exit_code == 0, validated.output
    tested = run("test")
    assert tested.exit_code == 0 and "1 passed in" in tested.output, tested.output
    jsonschema.validate(yaml.safe_load(example), sequence_json_schema())  # editors agree


def test_the_api_dry_run_pins_a_variant(run_store, store, store_url: str, project: Path):
    write(project, "guide.yaml", GUIDE)
    assert run_store("apply", "--yes").exit_code == 0
    with serving(project, store_url) as client:
        client.headers.update(token(run_store, "dashboard", "read"))
        body = {"lead": {"name": "Ana Diaz"}, "variants": {"guide": "b"}}
        answer = client.post("/api/nurturing-sequences/guide/test", json=body)
        assert answer.status_code == 200, answer.text
        first = answer.json()["timeline"][0]
        assert first["message"]["subject"] == "Ana, your guide" and "variant b" in first["notes"]
        wrong = client.post(
            "/api/nurturing-sequences/guide/test", json=body | {"variants": {"guide": "z"}}
        )
        assert wrong.status_code in (400, 422) and "has no variant 'z'" in wrong.text


def test_a_sequence_with_variants_dumps_as_it_is_written(run_store, project: Path):
    write(project, "guide.yaml", GUIDE)
    assert run_store("apply", "--yes").exit_code == 0
    assert run_store("sequences", "duplicate", "guide", "Guide Copy").exit_code == 0
    copy = yaml.safe_load((project / "sequences" / "guide-copy.yaml").read_text())
    first = copy["steps"][0]
    assert "action_config" not in first and [v["id"] for v in first["variants"]] == ["a", "b"]
    assert run_store("validate").exit_code == 0
    assert run_store("plan").stdout.startswith("No changes.")
