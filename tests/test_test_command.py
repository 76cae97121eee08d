"""`nurture test`: a timeline for a lead, the test cases of every sequence, JUnit for CI."""

import json
import shutil
from pathlib import Path
from xml.etree import ElementTree

from builders import sequence, step, write

from nurture.cli import output

SEQUENCES = Path(__file__).resolve().parent.parent / "sequences"

WELCOME = sequence(
    "Welcome",
    step("Hello"),
    step("Guide", "send_email", delay_days=1),
    funnels=["web"],
    trigger_conditions={"lead_score": {"min": 30}},
    send_window={"days": "mon-fri", "start": "09:00", "end": "17:00"},
)


def test_the_example_sequences_pass_their_cases(project: Path, run):
    for path in SEQUENCES.glob("*.yaml"):
        shutil.copy(path, project / "sequences")
    result = run("test", "--junit", "report.xml")
    assert result.exit_code == 0, result.output
    assert "18 passed in" in result.output and "failed" not in result.output
    report = ElementTree.parse(project / "report.xml").getroot()
    assert (report.get("tests"), report.get("failures"), report.get("errors")) == ("18", "0", "0")
    assert not (project / "nurture.db").exists()  # the project's store is never touched


def test_a_failing_case_shows_expected_against_actual_and_exits_1(project: Path, run):
    case = {
        "name": "a warm lead gets the guide",
        "lead": {"name": "Ana Ruiz", "score": 45},
        "start": "2025-03-03T09:00:00Z",
        "events": ["+2h convert"],
        "expect": {
            "steps": ["hello", "guide"],
            "contains": {"hello": "Hello Ana"},
            "status": "completed",
        },
    }
    write(project, "welcome.yaml", WELCOME | {"tests": [case]})
    result = run("test", "--junit", "out/report.xml")
    assert result.exit_code == 1
    out = result.output
    assert "✗ Welcome › a warm lead gets the guide" in out
    assert "steps differ (- expected, + actual)" in out
    assert "  hello" in out and "- guide" in out
    assert (
        "hello: the message lacks 'Hello Ana'" in out and "+ to +12025550100: Hi Ana, Hello" in out
    )
    assert "status: expected completed, got converted" in out
    assert "actual timeline:" in out and "lead converted" not in out.split("actual timeline:")[0]
    assert "0 passed, 1 failed" in out
    failure = ElementTree.parse(project / "out/report.xml").find(".//failure")
    assert failure is not None and "steps differ" in failure.get("message")


def test_a_timeline_for_a_lead_given_field_by_field(project: Path, run, monkeypatch):
    monkeypatch.setattr(output.out, "width", 200)  # a wide terminal: one line per row
    write(project, "welcome.yaml", WELCOME)
    result = run(
        "test", "welcome", "--lead-field", "name=Ana Ruiz", "--lead-field", "score=45",
        "--start", "2025-03-07T16:30:00Z", "--tz", "Europe/Madrid", "--event", "+1h tag=vip",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Welcome — times in Europe/Madrid" in out
    assert "Mon 2025-03-10 09:00 CET" in out  # Friday 17:30 in Madrid is after the window
    assert "17:30 is after the send window closes (17:00)" in out
    assert "tags: vip" in out and "completed: 2 sent" in out and "nothing was sent" in out
    assert not (project / "nurture.db").exists()


def test_json_gives_the_same_timeline_as_data(project: Path, run):
    write(project, "welcome.yaml", WELCOME)
    lead = "name: Ana Ruiz\nscore: 45\nfields: {goal: strength}\n"
    result = run(
        "test", "--funnel", "web", "--lead", "-", "--start", "2025-03-03T09:00:00Z", "--json",
        input=lead,
    )  # fmt: skip
    data = json.loads(result.stdout)
    assert data["chosen"] == "Welcome" and data["reason"] == "the only matching sequence"
    rows = data["timeline"]
    assert [(r["step"], r["outcome"], r["at"]) for r in rows] == [
        ("hello", "sent", "2025-03-03T09:00:00+00:00"),
        ("guide", "sent", "2025-03-04T09:00:00+00:00"),
        (None, "completed", "2025-03-04T09:00:00+00:00"),
    ]
    assert (
        rows[1]["message"]["subject"] == "Guide" and rows[0]["local"] == "Mon 2025-03-03 09:00 UTC"
    )


def test_the_funnel_decision_comes_first(project: Path, run):
    write(project, "welcome.yaml", WELCOME)
    result = run("test", "--funnel", "web", "--lead-field", "name=Al", "--lead-field", "score=10")
    assert result.exit_code == 0
    assert "Funnel web: no sequence" in result.output
    assert "✗ lead_score: wants 30-100, lead has 10" in result.output
    assert "Not enrolled" in result.output


def test_bad_input_is_a_clear_error(project: Path, run):
    write(project, "welcome.yaml", WELCOME)
    lead = ("--lead-field", "name=Al")
    bad_event = run("test", "welcome", *lead, "--event", "soon convert")
    assert bad_event.exit_code == 1 and "error: --event 'soon convert': " in bad_event.output
    bad_score = run("test", "welcome", "--lead-field", "score=lots")
    assert bad_score.exit_code == 1 and "error: --lead-field: score:" in bad_score.output
    missing = run("test", "nope", *lead)
    assert missing.exit_code == 1 and "no sequence 'nope'" in missing.output
    no_lead = run("test", "--funnel", "web")
    assert no_lead.exit_code == 1 and "give the lead" in no_lead.output
    (project / "lead.yaml").write_text("- not a mapping\n")
    not_mapping = run("test", "welcome", "--lead", "lead.yaml")
    assert "expected a mapping of lead fields" in not_mapping.output
    (project / "lead.bin").write_bytes(b"\xdd\x00\xff")
    binary = run("test", "welcome", "--lead", "lead.bin")
    assert (
        binary.exit_code == 1 and "error: --lead lead.bin: cannot read it as text" in binary.output
    )
    never = run("test", "welcome", *lead, "--event", "+1d fail=send_sms*0")
    assert never.exit_code == 1 and "(N attempts, 1 or more)" in never.output
    junit = run("test", "welcome", *lead, "--junit", "report.xml")
    assert junit.exit_code == 1 and "--junit reports test cases" in junit.output
    assert not (project / "report.xml").exists()
