"""`nurture leads ...` from the command line, on SQLite and Postgres."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from builders import sequence, step, write
from sqlalchemy.exc import IntegrityError

from nurture.store.tables import Lead


@pytest.fixture
def nurture(run_store, project: Path):
    """A project with one sequence on the `website` funnel, applied."""
    warm = {"lead_temperature": ["Warm", "Hot"]}
    write(
        project,
        "welcome.yaml",
        sequence("Welcome", step("Hi"), funnels=["Website"], trigger_conditions=warm),
    )
    assert run_store("apply", "--yes").exit_code == 0
    return run_store


def add(nurture, *args: str):
    return nurture("leads", "add", "--funnel", "website", "--name", "Dr. Ana Ruiz", *args)


def test_add_enrolls_at_once_and_says_why(nurture):
    result = add(
        nurture, "--email", "Ana@Example.COM", "--temperature", "warm", "--tz", "Europe/Madrid"
    )
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("Added lead 1 Dr. Ana Ruiz <ana@example.com>.\n")
    assert "Enrolled in Welcome (the only matching sequence); first step hi at " in result.stderr
    shown = json.loads(nurture("leads", "show", "1", "--json").stdout)
    assert shown["first_name"] == "Ana" and shown["timezone"] == "Europe/Madrid"
    assert [(e["sequence"], e["status"], e["step_id"]) for e in shown["enrollments"]] == [
        ("Welcome", "active", "hi")
    ]
    assert shown["next"]["step_id"] == "hi"
    assert "next: hi of Welcome at " in nurture("leads", "show", "1").stdout


def test_add_says_why_there_is_no_sequence(nurture):
    result = add(nurture, "--temperature", "Cold")
    assert result.exit_code == 0
    assert "Not enrolled: no active sequence's trigger conditions hold: " in result.stderr
    assert "✗ lead_temperature: wants Warm or Hot, lead has 'Cold'" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--email", "ana@"), "error: invalid email 'ana@'"),
        (("--phone", "555 1234"), "error: invalid phone '555 1234': no country code"),
        (("--score", "101"), "error: score 101 is out of range 0-100"),
        (("--tz", "Mars/Olympus"), "error: time zone: 'Mars/Olympus' is not an IANA time zone"),
        (("--field", "goal"), "error: --field wants key=value, got 'goal'"),
    ],
)
def test_bad_lead_data_is_an_error_not_a_traceback(nurture, args, message):
    result = add(nurture, *args)
    assert result.exit_code == 1
    assert result.stderr.startswith(message)


def test_an_unknown_funnel_lists_the_known_ones(nurture):
    result = nurture("leads", "add", "--funnel", "webiste", "--name", "Ana")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: no funnel 'webiste' (did you mean 'Website'?); known funnels: Website"
    )


def test_phone_numbers_without_a_country_use_phone_region(nurture, project):
    (project / "nurture.toml").write_text('phone_region = "US"\n', encoding="utf-8")
    assert add(nurture, "--phone", "(415) 555-0123").exit_code == 0
    assert json.loads(nurture("leads", "show", "1", "--json").stdout)["phone"] == "+14155550123"


def test_adding_the_same_email_again_updates_the_lead(nurture):
    add(nurture, "--email", "ana@example.com", "--temperature", "Warm", "--tag", "a")
    again = add(nurture, "--email", "ana@example.com", "--score", "70", "--tag", "b")
    assert again.stderr.startswith("Updated lead 1 ")
    assert "Not enrolled: already enrolled in Welcome before (re_entry: never)." in again.stderr
    [lead] = json.loads(nurture("leads", "list", "--json").stdout)
    assert (lead["score"], lead["tags"]) == (70, ["a", "b"])


def test_update_tags_fields_and_conversion(nurture):
    add(nurture, "--email", "ana@example.com", "--temperature", "Warm", "--tag", "new")
    result = nurture(
        "leads",
        "update",
        "ana@example.com",
        "--tag",
        "vip",
        "--untag",
        "NEW",
        "--field",
        "goal=strength",
    )
    assert result.exit_code == 0 and result.stderr == "Updated lead 1 Dr. Ana Ruiz.\n"
    converted = nurture("leads", "convert", "1")
    assert converted.stderr == "Converted lead 1 Dr. Ana Ruiz; stopped 1 enrollment.\n"
    shown = json.loads(nurture("leads", "show", "ana@example.com", "--json").stdout)
    assert (shown["tags"], shown["fields"], shown["status"]) == (
        ["vip"],
        {"goal": "strength"},
        "Converted",
    )
    assert shown["converted_at"] is not None
    [enrollment] = shown["enrollments"]
    assert (enrollment["status"], enrollment["next_run_at"]) == ("converted", None)


def test_update_refuses_an_email_or_external_id_another_lead_has(nurture):
    add(nurture, "--email", "ana@example.com", "--external-id", "crm-1")
    add(nurture, "--email", "bo@example.com")
    email = nurture("leads", "update", "bo@example.com", "--email", "ana@example.com")
    assert email.exit_code == 1
    assert email.stderr == "error: email 'ana@example.com' belongs to lead 1 (Dr. Ana Ruiz)\n"
    external = nurture("leads", "update", "2", "--external-id", "crm-1")
    assert external.exit_code == 1
    assert external.stderr == "error: external id 'crm-1' belongs to lead 1 (Dr. Ana Ruiz)\n"
    assert nurture("leads", "update", "2", "--external-id", "crm-2").exit_code == 0
    assert json.loads(nurture("leads", "show", "crm-2", "--json").stdout)["id"] == 2


def test_list_filters(nurture):
    add(nurture, "--email", "a@example.com", "--status", "New", "--source", "Ads", "--tag", "vip")
    add(nurture, "--email", "b@example.com", "--status", "Contacted", "--external-id", "crm-2")
    listed = lambda *args: [  # noqa: E731
        lead["email"] for lead in json.loads(nurture("leads", "list", "--json", *args).stdout)
    ]
    assert listed() == ["b@example.com", "a@example.com"]
    assert listed("--status", "new") == ["a@example.com"]
    assert listed("--source", "ads", "--tag", "VIP") == ["a@example.com"]
    assert listed("--limit", "1") == ["b@example.com"]
    assert listed("--funnel", "Website") == ["b@example.com", "a@example.com"]
    table = nurture("leads", "list").stdout
    assert "a@example.com" in table and "vip" in table
    assert nurture("leads", "show", "crm-2").exit_code == 0


def test_show_names_a_missing_lead(nurture):
    result = nurture("leads", "show", "nobody@example.com")
    assert result.exit_code == 1
    assert (
        "error: no lead 'nobody@example.com' (give its id, external id or email)" in result.stderr
    )


def test_update_with_nothing_to_change_says_so(nurture):
    add(nurture, "--email", "ana@example.com")
    result = nurture("leads", "update", "1")
    assert result.exit_code == 1 and "error: nothing to change: give --status" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [  # an argument's undecodable bytes reach Python as lone surrogates (surrogateescape)
        (("--name", "Ana \udcff"), "error: name contains a lone surrogate ('\\udcff')"),
        (("--name", "Ana\x00"), "error: name contains a NUL character (\\x00): remove it"),
        (("--name", "A" * 201), "error: name is 201 characters long, over the limit of 200"),
        (("--source", "s" * 101), "error: source is 101 characters long, over the limit of 100"),
        (("--external-id", "crm\x001"), "error: external_id contains a NUL character"),
        (("--tag", "t" * 101), "error: tag 'tttttttttttttttttttttttttttttttttttttttt'... (101"),
        (("--field", "goal=\x00"), "error: fields.goal contains a NUL character (\\x00)"),
    ],
)
def test_a_value_the_store_cannot_keep_is_refused_naming_the_field(nurture, args, message):
    named = () if "--name" in args else ("--name", "Ana")
    result = nurture("leads", "add", "--funnel", "website", *named, *args)
    assert result.exit_code == 1
    assert result.stderr.startswith(message), result.stderr
    assert json.loads(nurture("leads", "list", "--json").stdout) == []


def test_a_one_word_name_longer_than_first_names_column_is_kept_whole(nurture):
    name = "Ana" + "a" * 147
    assert nurture("leads", "add", "--funnel", "website", "--name", name).exit_code == 0
    shown = json.loads(nurture("leads", "show", "1", "--json").stdout)
    assert (shown["name"], shown["first_name"]) == (name, name[:100])
    assert nurture("leads", "update", "1", "--name", "B" * 200).exit_code == 0
    assert json.loads(nurture("leads", "show", "1", "--json").stdout)["first_name"] == "B" * 100


def test_a_store_error_never_shows_the_statements_values(store):
    row = {"name": "Ana Ruiz", "first_name": "Ana", "external_id": "crm-1"}
    times = {"created_at": datetime.now(UTC), "updated_at": datetime.now(UTC)}
    with store.session() as session:
        session.add(Lead(**row, **times, email="ana@example.com"))
    with pytest.raises(IntegrityError) as raised, store.session() as session:
        session.add(Lead(**row, **times, email="secret.person@example.com", phone="+15555550100"))
    shown = str(raised.value)
    assert "secret.person@example.com" not in shown and "+15555550100" not in shown
    assert "[SQL parameters hidden due to hide_parameters=True]" in shown
