"""`nurture validate`: every problem of every sequence file at once, as `file:line:column: msg`."""

import json
import shutil
import time
from pathlib import Path

import pytest
import yaml
from builders import SEED_WARM_LEAD, sequence

REPO_SEQUENCES = Path(__file__).resolve().parent.parent / "sequences"

SEED = SEED_WARM_LEAD  # the seed system's sequence, exactly as its JSON API received it

EMAIL_STEP = """\
  - name: Free Guide
    action_type: send_email
    action_config:
      subject: Your guide, {{ lead.first_name }}
      body: |
        Hi {{ lead.first_name }},

        Here is your guide, from {{ coach.nmae }}.
"""


def write(project: Path, name: str, text: str) -> Path:
    path = project / "sequences" / name
    path.write_text(text, encoding="utf-8")
    return path


def seed(old: str = "", new: str = "") -> str:
    """The seed sequence with one edit, as a user would make it."""
    assert old in SEED
    return SEED.replace(old, new, 1)


def problems(result) -> list[str]:
    """What validate reports, less the seed's WhatsApp-window warning (test_whatsapp_rule.py)."""
    return [line for line in result.stdout.splitlines() if "free-text WhatsApp step" not in line]


def test_the_seeds_camel_case_sequence_is_valid(run, project):
    write(project, "warm-lead-welcome.yaml", SEED)
    result = run("validate")
    assert result.exit_code == 0
    # Valid; its free-text WhatsApp welcome has no template for leads outside the 24-hour window.
    assert result.stdout.startswith("sequences/warm-lead-welcome.yaml:14:7: warning: free-text")
    assert len(result.stdout.splitlines()) == 1
    assert "✓ 1 sequence valid (1 warning)" in result.stderr


def test_the_shipped_example_sequences_are_valid(run, project):
    shutil.copytree(REPO_SEQUENCES, project / "sequences", dirs_exist_ok=True)
    result = run("validate")
    assert result.exit_code == 0, result.stdout
    assert f"✓ {len(list(REPO_SEQUENCES.glob('*.yaml')))} sequences valid" in result.stderr


def test_times_of_day_stay_times_and_no_stays_a_country(run, project):
    window = "sendWindow: {start: 09:00, end: 18:00, holidays: NO}\nsteps:\n"
    write(project, "seed.yaml", seed("steps:\n", window))
    assert run("validate").exit_code == 0


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param(
            "category: warm_lead",
            "category: warm_lead: x",
            "3:20: invalid YAML: mapping values are not allowed here",
            id="yaml-syntax",
        ),
        pytest.param(
            "category: warm_lead\n",
            "category: warm_lead\nname: Again\n",
            "4:1: duplicate key 'name' (first at line 1)",
            id="duplicate-key",
        ),
        pytest.param(
            "leadSource:",
            "leadSorce:",
            "6:3: unknown key 'leadSorce' (did you mean 'leadSource'?)",
            id="unknown-key",
        ),
        pytest.param(
            "category: warm_lead\n",
            "category: warm_lead\ndays: mon-fri\n",
            "4:1: unknown key 'days' here ('days' goes under send_window)",
            id="key-in-the-wrong-place",
        ),
        pytest.param(
            "category: warm_lead\n",
            "category: warm_lead\nmaxRetries: many\n",
            "4:1: maxRetries: Input should be a valid integer, unable to parse string as an integer"
            " (found 'many')",
            id="wrong-type",
        ),
        pytest.param(
            "{min: 30, max: 70}",
            "{min: 80, max: 30}",
            "5:3: leadScore: min (80) is greater than max (30)",
            id="min-above-max",
        ),
        pytest.param(
            "category: warm_lead",
            "category: warm-leed",
            "3:1: category: unknown value 'warm-leed' (did you mean 'warm_lead'?)",
            id="bad-choice",
        ),
        pytest.param(
            "actionType: send_whatsapp_message",
            "actionType: send_whatsap_message",
            "12:5: unknown action type 'send_whatsap_message'"
            " (did you mean 'send_whatsapp_message'?)",
            id="unknown-action-type",
        ),
        pytest.param(
            "    actionType: send_whatsapp_message\n",
            "",
            "10:5: missing action_type",
            id="missing-action-type",
        ),
        pytest.param(
            "{{lead.name}}",
            "{{lead.nme}}",
            "14:22: message: unknown template variable 'lead.nme' (did you mean 'lead.name'?)",
            id="unknown-template-variable",
        ),
        pytest.param(
            "{{lead.name}}",
            "{{lead.name}",
            "14:20: message: template syntax error: unexpected '}'",
            id="template-syntax",
        ),
    ],
)
def test_each_problem_is_reported_where_it_is(run, project, old, new, expected):
    write(project, "seed.yaml", seed(old, new))
    result = run("validate")
    assert result.exit_code == 1
    assert problems(result) == [f"sequences/seed.yaml:{expected}"]
    assert "1 file, 1 error" in result.stderr


def test_an_action_config_that_does_not_fit_its_action_type(run, project):
    write(project, "seed.yaml", seed("actionType: send_whatsapp_message", "actionType: send_email"))
    assert problems(run("validate")) == [
        "sequences/seed.yaml:13:5: missing required field 'subject'",
        "sequences/seed.yaml:13:5: missing required field 'body'",
        "sequences/seed.yaml:14:7: unknown key 'message' "
        "(a send_email actionConfig takes: body, html, reply_to, subject)",
    ]


def test_duplicate_step_ids_point_at_the_second_step(run, project):
    write(project, "seed.yaml", SEED + SEED[SEED.index("  - stepNumber") :])
    assert problems(run("validate")) == [
        "sequences/seed.yaml:17:5: steps[1]: duplicate step id 'welcome-message' (also step 1);"
        " give one an explicit 'id'",
    ]


def test_template_problems_in_a_block_scalar_point_at_the_line_inside_the_file(run, project):
    write(project, "seed.yaml", SEED + EMAIL_STEP)
    assert problems(run("validate")) == [
        "sequences/seed.yaml:24:37: body: unknown template variable 'coach.nmae'"
        " (did you mean 'coach.name'?)",
    ]


def test_template_problems_in_folded_text_and_whatsapp_variables(run, project):
    whatsapp = """\
name: Book A Call
steps:
  - name: Book A Call
    actionType: send_whatsapp_message
    actionConfig:
      template:
        contentSid: HX3f8a1c2b9d7e4f60a5b1c2d3e4f5a6b7
        variables:
          '1': '{{ lead.first_name }}'
          '2': '{{ coach.booking_link }}'
      message: >-
        Hi {{ lead.first_name }}, want a plan built around your week?
        Book a call here: {{ coach.bookin_url }}
"""
    write(project, "book.yaml", whatsapp)
    assert problems(run("validate")) == [
        "sequences/book.yaml:10:20: variables.2: unknown template variable 'coach.booking_link'"
        " (did you mean 'coach.booking_url'?)",
        "sequences/book.yaml:13:30: message: unknown template variable 'coach.bookin_url'"
        " (did you mean 'coach.booking_url'?)",
    ]


def test_coach_keys_come_from_the_project_settings(run, project):
    with (project / "nurture.toml").open("a") as toml:
        toml.write('[coach]\nname = "Ana"\ncalendly = "https://calendly.com/ana"\n')
    text = seed("{{lead.name}}", "{{ lead.name }}, book at {{ coach.calendly }}")
    write(project, "seed.yaml", text)
    assert run("validate").exit_code == 0


def test_duplicate_sequence_names_across_files_compare_slugs(run, project):
    write(project, "a.yaml", SEED)
    write(project, "b.yaml", seed("name: Warm Lead Welcome", "name: warm-lead-welcome"))
    result = run("validate")
    assert result.exit_code == 1
    assert problems(result) == [
        "sequences/b.yaml:1:1: duplicate sequence name 'warm-lead-welcome'"
        " (same slug as 'Warm Lead Welcome'): already in sequences/a.yaml",
    ]


def test_every_problem_of_every_file_at_once(run, project):
    write(project, "a.yaml", seed("leadSource:", "leadSorce:").replace("max: 70", "max: 7O"))
    write(project, "b.yaml", "name: [unclosed\n")
    write(project, "c.yaml", SEED.replace("Warm Lead Welcome", "Cold Lead Warming"))
    result = run("validate")
    assert result.exit_code == 1
    assert problems(result) == [
        "sequences/a.yaml:5:24: max: Input should be a valid integer, unable to parse string as an"
        " integer (found '7O')",
        "sequences/a.yaml:6:3: unknown key 'leadSorce' (did you mean 'leadSource'?)",
        "sequences/b.yaml:2:1: invalid YAML: expected ',' or ']', but got '<stream end>'"
        " (while parsing a flow sequence that starts at line 1)",
    ]
    assert "3 files, 3 errors" in result.stderr


def test_explicit_paths_and_a_missing_one(run, project):
    good = write(project, "good.yaml", SEED)
    result = run("validate", str(good), "nowhere.yaml")
    assert result.exit_code == 1
    assert problems(result) == ["nowhere.yaml:1:1: no such file or directory"]


def test_an_empty_folder_is_a_warning_not_an_error(run, project):
    result = run("validate")
    assert result.exit_code == 0
    assert problems(result) == [
        "sequences:1:1: warning: no sequence files (*.yaml, *.yml, *.json) in this folder"
    ]


def test_json_output(run, project):
    write(project, "good.yaml", SEED)
    bad = seed("name: Warm Lead Welcome", "name: Other").replace("max: 70", "max: 170")
    write(project, "bad.yaml", bad)
    result = run("validate", "--json")
    assert result.exit_code == 1
    assert without_window_warnings(json.loads(result.stdout)) == {
        "valid": False,
        "files": 2,
        "sequences": ["Warm Lead Welcome"],
        "diagnostics": [
            {
                "file": "sequences/bad.yaml",
                "line": 5,
                "column": 24,
                "message": "max: Input should be less than or equal to 100 (found 170)",
                "severity": "error",
            }
        ],
    }


def test_json_output_when_valid(run, project):
    write(project, "good.yaml", SEED)
    result = run("validate", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert [d["severity"] for d in data["diagnostics"]] == ["warning"]  # the WhatsApp window
    assert without_window_warnings(data) == {
        "valid": True,
        "files": 1,
        "sequences": ["Warm Lead Welcome"],
        "diagnostics": [],
    }


def without_window_warnings(data: dict) -> dict:
    kept = [d for d in data["diagnostics"] if "free-text WhatsApp step" not in d["message"]]
    return data | {"diagnostics": kept}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "1:1: empty file, expected a sequence mapping (name, steps, ...)"),
        (
            b"\x89PNG\r\n\x1a\n\x00",
            "3:1: binary file (NUL byte); a sequence file is UTF-8 YAML text",
        ),
        (b"- name: a\n- name: b\n", "1:1: expected a mapping at the top, found a list"),
        (b"name: caf\xe9\n", "1:10: not UTF-8 text (byte 0xe9); save the file as UTF-8"),
        (b"[" * 10_000_000, "1:1: file too large (over 1 MB); a sequence file is a few kilobytes"),
        (b"[" * 900_000, "1:65: nesting too deep (more than 64 levels)"),
    ],
    ids=["empty", "binary", "list", "latin-1", "10MB-nesting", "deep-nesting"],
)
def test_broken_files_are_diagnostics_not_tracebacks(run, project, content, expected):
    (project / "sequences" / "broken.yaml").write_bytes(content)
    result = run("validate")
    assert result.exit_code == 1
    assert problems(result) == [f"sequences/broken.yaml:{expected}"]


def test_sequence_files_in_a_subfolder_are_named_as_not_read(run, project):
    (project / "sequences" / "drafts").mkdir()
    (project / "sequences" / "drafts" / "idea.yaml").write_text(SEED)
    write(project, "good.yaml", SEED)
    result = run("validate")
    assert result.exit_code == 0
    assert "sequences/drafts:1:1: warning: holds sequence files that are not read" in result.stdout


def test_a_test_case_through_a_funnel_no_sequence_offers_is_an_error(run, project):
    case = (
        "tests:\n  - name: probe\n    lead: {name: Ana}\n    funnel: Tiktok\n"
        "    expect: {chosen: true}\n"
    )
    (project / "sequences" / "warm.yaml").write_text(SEED_WARM_LEAD + "funnels: [website]\n" + case)
    result = run("validate")
    assert result.exit_code == 1
    assert (
        "test 'probe' names funnel 'Tiktok', which no sequence offers (funnels: website)"
        in result.output
    )


def test_costly_templates_are_reported_at_once_where_they_are_and_the_other_files_still_checked(
    run, project
):
    """`9**(9**9)` once kept validate busy for ever; `10**100000` aborted it for every file."""
    sms = "  - name: {name}\n    action_type: send_sms\n    action_config:\n      message: {text}\n"
    costly = "name: Costly\nsteps:\n" + "".join(
        sms.format(name=f"Step {number}", text=text)
        for number, text in enumerate(
            [
                "'Hi {{ 9**(9**9) }}'",
                "'{{ lead.first_name }} {{ 10**100000 }}'",
                "'{{ lead.name * 1000000000 }}'",
            ]
        )
    )
    write(project, "costly.yaml", costly)
    write(project, "seed.yaml", seed("Hi {{lead.name}}!", "Hi {{ lead.nmae }}!"))
    started = time.process_time()
    result = run("validate")
    assert time.process_time() - started < 10 and result.exit_code == 1
    assert problems(result) == [
        "sequences/costly.yaml:6:24: message: template too costly:"
        " 9 ** 387,420,489 has over the limit of 1,000 digits",
        "sequences/costly.yaml:10:44: message: template too costly:"
        " 10 ** 100,000 has over the limit of 1,000 digits",
        "sequences/costly.yaml:14:30: message: template too costly: repeating a text or a list"
        " 1,000,000,000 times is over the limit of 100,000 characters and items",
        "sequences/seed.yaml:14:23: message: unknown template variable 'lead.nmae'"
        " (did you mean 'lead.name'?)",
    ]


LONG_WAITS = """\
name: Long Waits
{top}steps:
  - name: Hello
    action_type: {action}
    action_config:
      {config}
{delay}"""
WAIT_LIMIT = "more than 10 years (3650d), the longest a sequence waits"


def long_waits(top: str = "", action: str = "send_sms", config: str = "", delay: str = "") -> str:
    """A one-step sequence with some waits set, as a user would write them."""
    config = config or ("title: Call {{ lead.name }}" if action != "send_sms" else "message: Hi")
    return LONG_WAITS.format(top=top, action=action, config=config, delay=delay)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            long_waits(delay="    delay_days: 10000000\n"),
            f"7:5: delay_days: 10,000,000 days is {WAIT_LIMIT}",
            id="step-delay",
        ),
        pytest.param(
            long_waits(action="wait", config="note: a pause", delay="    delayMinutes: 6000000\n"),
            f"7:5: delayMinutes: 6,000,000 minutes is {WAIT_LIMIT}",
            id="wait-step",
        ),
        pytest.param(
            long_waits(delay="    delay_days: 3650\n    delay_hours: 24\n"),
            f"8:5: delay_hours: the delay adds up to 3651d, {WAIT_LIMIT}",
            id="delay-parts-add-up",
        ),
        pytest.param(
            long_waits(top="retry_delay: 10000000d\n"),
            f"2:1: retry_delay: 10000000d is {WAIT_LIMIT}",
            id="retry-delay",
        ),
        pytest.param(
            long_waits(top="max_retries: 20\nretry_backoff: 2\n"),
            f"2:1: max_retries: retry 20 would wait 5461d 8h (retry_delay × retry_backoff^19), "
            f"{WAIT_LIMIT}: lower max_retries, retry_backoff or retry_delay",
            id="retries-back-off-past-the-limit",
        ),
        pytest.param(
            long_waits(top="maxRetries: 20\nretryBackoff: 10\n"),
            f"2:1: maxRetries: retry 20 would wait 1.04e+17d (retry_delay × retry_backoff^19), "
            f"{WAIT_LIMIT}: lower max_retries, retry_backoff or retry_delay",
            id="retries-back-off-past-the-calendar",
        ),
        pytest.param(
            long_waits(top="retry_delay: 1000d\nretry_backoff: 2\n"),
            f"3:1: retry_backoff: retry 3 would wait 4000d (retry_delay × retry_backoff^2), "
            f"{WAIT_LIMIT}: lower max_retries, retry_backoff or retry_delay",
            id="the-default-retries-from-a-long-delay",
        ),
        pytest.param(
            long_waits(action="create_task", config="title: Call\n      due_in: 100000w"),
            f"7:7: due_in: 700000d is {WAIT_LIMIT}",
            id="task-due-in",
        ),
        pytest.param(
            long_waits(action="schedule_appointment", config="title: Meet\n      after: 99999999d"),
            f"7:7: after: 99999999d is {WAIT_LIMIT}",
            id="appointment-after",
        ),
    ],
)
def test_a_wait_over_ten_years_is_reported_where_it_is(run, project, text, expected):
    write(project, "long.yaml", text)
    result = run("validate")
    assert result.exit_code == 1
    assert problems(result) == [f"sequences/long.yaml:{expected}"]
    assert "Traceback" not in result.output


def test_waits_of_exactly_ten_years_are_valid(run, project):
    task = {"name": "Call", "action_type": "create_task", "action_config": {"title": "Call"}}
    task["action_config"]["due_in"] = "3650d"
    meet = {"name": "Meet", "action_type": "schedule_appointment"}
    meet["action_config"] = {"title": "Meet", "after": "3650d", "at": "23:30"}
    meet |= {"delay_days": 3649, "delay_hours": 23, "delay_minutes": 60}
    retries = {"retry_delay": "456d 6h", "max_retries": 4, "retry_backoff": 2}  # the 4th: 3650d
    write(project, "long.yaml", yaml.safe_dump(sequence("Long", task, meet, **retries)))
    result = run("validate")
    assert result.exit_code == 0, result.output
