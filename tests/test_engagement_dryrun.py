"""Engagement in the dry run: `--event "+1d click=STEP"` and `tests:` cases with engagement events,
through the engine the daemon runs; `validate` names engagement conditions' unknown steps."""

import json

from builders import sequence, step, write

STEPS = [
    step("Welcome", "send_email"),
    step("Wait", "wait", wait_for={"event": "click", "timeout": "2d"}),
    step("Thanks", conditions={"clicked": "welcome"}),
    step("Nudge", conditions={"not_clicked": ["welcome"], "replied": False}),
    step("Hot", conditions={"engagement_score": {"min": 3}}),
]


def test_a_click_in_the_dry_run_ends_the_wait_and_turns_the_conditions(run, project):
    write(project, "offer.yaml", sequence("Offer", *STEPS))
    lead = ["--lead-field", "name=Ana", "--start", "2025-03-03T09:00:00Z", "--json"]
    clicked = run("test", "Offer", *lead, "--event", "+3h click=welcome")
    assert clicked.exit_code == 0, clicked.output
    rows = {row["step"]: row for row in json.loads(clicked.stdout)["timeline"] if row["step"]}
    assert rows["wait"]["at"].startswith("2025-03-03T12:00")
    assert any("the click came" in note for note in rows["wait"]["notes"])
    assert rows["thanks"]["outcome"] == "sent" and rows["nudge"]["outcome"] == "skipped"
    assert rows["hot"]["outcome"] == "sent"  # a click an instant ago counts 3
    idle = json.loads(run("test", "Offer", *lead).stdout)["timeline"]
    outcome = {row["step"]: row["outcome"] for row in idle if row["step"]}
    assert outcome == {"welcome": "sent", "wait": "done", "thanks": "skipped", "nudge": "sent"} | {
        "hot": "skipped"
    }


def test_cases_with_engagement_events_pass_and_name_unknown_steps(run, project):
    cases = [
        {
            "name": "a click thanks",
            "events": ["+1h click=welcome"],
            "expect": {"steps": ["welcome", "wait", "thanks", "hot"], "skipped": ["nudge"]},
        },
        {
            "name": "a reply stops the nudge",
            "events": ["+1h reply"],
            "expect": {"skipped": ["thanks", "nudge"], "steps": ["welcome", "wait", "hot"]},
        },
    ]
    write(project, "offer.yaml", sequence("Offer", *STEPS, tests=cases))
    result = run("test")
    assert result.exit_code == 0, result.output
    cases[0]["events"] = ["+1h click=welcom"]
    write(project, "offer.yaml", sequence("Offer", *STEPS, tests=cases))
    result = run("validate")
    assert result.exit_code == 1
    assert "no step 'welcom' in this sequence (did you mean 'welcome'?)" in result.output


def test_validate_points_at_an_engagement_condition_naming_no_earlier_step(run, project):
    steps = [*STEPS[:2], step("Thanks", conditions={"opened": ["welcom"]})]
    path = write(project, "offer.yaml", sequence("Offer", *steps))
    result = run("validate")
    assert result.exit_code == 1
    assert f"{path.relative_to(project)}:" in result.output
    assert "opened: no step 'welcom' in this sequence (did you mean 'welcome'?)" in result.output
    later = [STEPS[0] | {"conditions": {"clicked": "thanks"}}, step("Thanks")]
    write(project, "offer.yaml", sequence("Offer", *later))
    assert "step 'thanks' does not come before step 'welcome'" in run("validate").output
