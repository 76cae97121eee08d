"""One grammar for what users spell many ways: durations, JSON sequence files, categories."""

import json

import pytest
from builders import sequence, step, write
from serving import serving, token

from nurture.spec.files import load_sequences

BASE = "/api/nurturing-sequences"


def delays(project) -> list[tuple[int, int, int]]:
    [loaded] = load_sequences([project / "sequences"])
    return [(s.delay_days, s.delay_hours, s.delay_minutes) for s in loaded.spec.steps]


# Durations: `2h` wherever a delay is written, `delay: 1d 4h` too


def test_delay_fields_take_durations_as_retry_delay_does(run, project):
    doc = sequence(
        "Welcome",
        step("Hello", delay_hours="2h"),
        step("Later", delayDays="1w", delay_minutes="90m"),
        step("Plain", delay_hours=3),
        retry_delay="2h",
    )
    write(project, "welcome.yaml", doc)
    assert run("validate").exit_code == 0
    assert delays(project) == [(0, 2, 0), (7, 0, 90), (0, 3, 0)]


def test_one_delay_key_takes_the_whole_delay(run, project):
    write(project, "welcome.yaml", sequence("Welcome", step("Hello", delay="1d 4h 30m")))
    assert run("validate").exit_code == 0
    assert delays(project) == [(1, 4, 30)]


def test_delay_and_delay_units_are_the_same_version(run, project):
    """`delay: 1d 4h` is `delay_days: 1, delay_hours: 4`: switching spelling changes nothing."""
    write(project, "welcome.yaml", sequence("Welcome", step("Hello", delay_days=1, delay_hours=4)))
    assert run("apply", "--yes").exit_code == 0
    write(project, "welcome.yaml", sequence("Welcome", step("Hello", delay="1d 4h")))
    assert run("plan", "--detailed-exitcode").exit_code == 0


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"delay_hours": "2x"}, "delay_hours: '2x' is not a duration (use e.g. '30m', '2h'"),
        ({"delay": "soon"}, "delay: 'soon' is not a duration"),
        ({"delay_hours": "90m"}, "delay_hours: '90m' is not a whole number of hours"),
        ({"delay": "1d", "delay_hours": 2}, "delay: give `delay` or delay_hours, not both"),
        ({"delay": "90s"}, "delay: a step's delay counts in whole minutes"),
        ({"delay": "11000d"}, "delay: 11000d is more than 10 years"),
    ],
)
def test_a_bad_delay_is_reported_at_its_file_and_line(run, project, fields, expected):
    write(project, "welcome.yaml", sequence("Welcome", step("Hello"), step("Later", **fields)))
    result = run("validate")
    assert result.exit_code == 1
    line = next(n for n, text in enumerate(result.output.splitlines()) if expected in text)
    assert result.output.splitlines()[line].startswith("sequences/welcome.yaml:1"), result.output


# JSON sequence files: the original API's bodies, camelCase included

SEED = {
    "name": "Spring Reactivation",
    "category": "reactivation",
    "triggerConditions": {"leadScore": {"min": 0, "max": 40}},
    "stopOnConversion": True,
    "steps": [
        {
            "stepNumber": 1,
            "name": "Hello again",
            "actionType": "send_sms",
            "actionConfig": {"message": "Hi {{ lead.first_name }}"},
            "delayDays": 1,
        }
    ],
}


def test_a_json_sequence_file_loads_with_camel_case_keys(run, project):
    (project / "sequences" / "spring.json").write_text(json.dumps(SEED, indent="\t"))
    result = run("validate")
    assert result.exit_code == 0, result.output
    assert "1 sequence valid" in result.output
    assert "Spring Reactivation" in run("plan").output


def test_invalid_json_is_reported_at_its_line_and_column(run, project):
    (project / "sequences" / "spring.json").write_text('{\n  "name": "Spring",\n  "steps": [,]\n}')
    result = run("validate")
    assert result.exit_code == 1
    assert "sequences/spring.json:3:13: invalid JSON: Expecting value" in result.output


def test_a_wrong_key_in_a_json_file_names_its_line(run, project):
    broken = json.dumps({"stopOnConverson": True, **SEED}, indent=2)
    (project / "sequences" / "spring.json").write_text(broken)
    result = run("validate")
    line = broken.splitlines().index('  "stopOnConverson": true,') + 1
    assert f"sequences/spring.json:{line}:3: unknown key 'stopOnConverson'" in result.output


# Categories: hyphens, spaces and the original spellings


@pytest.mark.parametrize("spelled", ["warm lead", "Warm-Lead", "WARM_LEAD", "warm_lead"])
def test_a_category_loads_in_any_of_its_spellings(run, project, spelled):
    write(project, "welcome.yaml", sequence("Welcome", category=spelled))
    assert run("validate").exit_code == 0
    [loaded] = load_sequences([project / "sequences"])
    assert loaded.spec.category == "warm_lead"


def test_sequences_list_takes_the_category_as_people_write_it(run_store, project):
    write(project, "a.yaml", sequence("Alpha", category="follow up"))
    write(project, "b.yaml", sequence("Beta", category="objection_handling"))
    assert run_store("apply", "--yes").exit_code == 0
    for spelled in ("follow-up", "Follow-Up", "follow up", "follow_up"):
        listed = json.loads(run_store("sequences", "list", "--category", spelled, "--json").stdout)
        assert [row["name"] for row in listed] == ["Alpha"], spelled
    wrong = run_store("sequences", "list", "--category", "folow-up")
    assert wrong.exit_code == 1
    assert "--category 'folow-up' is not a category (did you mean 'follow_up'?)" in wrong.output


def test_the_api_takes_the_category_in_a_path_or_query_as_people_write_it(
    run_store, project, store_url
):
    write(project, "a.yaml", sequence("Alpha", category="objection_handling"))
    assert run_store("apply", "--yes").exit_code == 0
    with serving(project, store_url) as client:
        client.headers.update(token(run_store, "coach", "read"))
        for path in ("objection-handling", "Objection Handling", "objection_handling"):
            answer = client.get(f"{BASE}/category/{path}")
            assert [s["name"] for s in answer.json()] == ["Alpha"], path
        query = client.get(BASE, params={"category": "Objection-Handling"})
        assert [s["name"] for s in query.json()] == ["Alpha"]
        assert client.get(f"{BASE}/category/hot").status_code == 422
