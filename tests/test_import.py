"""`nurture leads import`: CSV and JSON lines, bad rows reported, good rows land, re-runs idempotent."""

import json
from pathlib import Path

import pytest
from builders import sequence, write
from sqlalchemy import select

from nurture.leads.import_rows import header_key
from nurture.store.tables import MatchCandidates

CSV = """\
External ID,Full Name,E-mail,Lead Score,Temperature,Tags,Goal
crm-1,Ana Ruiz,ana@example.com,55,Warm,"vip, yoga",strength
crm-2,Bo Berg,not-an-email,40,Warm,,
crm-3,Cy Chan,cy@example.com,140,Hot,,
crm-4,,dee@example.com,20,Cold,,
crm-5,Eve Ek,eve@example.com,10,Cold,,
"""


@pytest.fixture
def nurture(run_store, project: Path):
    warm = {"lead_temperature": ["Warm", "Hot"]}
    write(
        project,
        "welcome.yaml",
        sequence("Welcome", funnels=["Website", "Ads"], trigger_conditions=warm),
    )
    assert run_store("apply", "--yes").exit_code == 0
    return run_store


def import_json(nurture, path: Path, *args: str) -> dict:
    return json.loads(nurture("leads", "import", str(path), "--json", *args).stdout)


def leads(nurture) -> list[dict]:
    return json.loads(nurture("leads", "list", "--json").stdout)[::-1]


def test_csv_bad_rows_are_reported_by_row_number_while_good_rows_land(nurture, project):
    path = project / "leads.csv"
    path.write_text(CSV, encoding="utf-8")
    result = nurture("leads", "import", str(path), "--funnel", "website")
    assert result.exit_code == 1
    assert (
        result.stderr.splitlines()[-1]
        == "5 rows: 2 created, 0 updated, 0 unchanged, 3 rejected; 1 enrolled."
    )
    assert result.stderr.splitlines()[:-1] == [
        "error: row 3: invalid email 'not-an-email': An email address must have an @-sign.",
        "error: row 4: score 140 is out of range 0-100",
        "error: row 5: name is missing",
    ]
    ana, eve = leads(nurture)
    assert (ana["external_id"], ana["name"], ana["score"]) == ("crm-1", "Ana Ruiz", 55)
    assert (ana["tags"], ana["fields"], ana["funnel"]) == (
        ["vip", "yoga"],
        {"Goal": "strength"},
        "Website",
    )
    assert eve["name"] == "Eve Ek"


def test_rerunning_the_same_file_changes_nothing(nurture, project):
    path = project / "leads.csv"
    path.write_text(CSV, encoding="utf-8")
    first = import_json(nurture, path, "--funnel", "website")
    before = nurture("leads", "list", "--json").stdout
    again = import_json(nurture, path, "--funnel", "website")
    assert (first["created"], first["enrolled"]) == (2, 1)
    assert {k: again[k] for k in ("created", "updated", "unchanged", "enrolled")} == {
        "created": 0,
        "updated": 0,
        "unchanged": 2,
        "enrolled": 0,
    }
    assert nurture("leads", "list", "--json").stdout == before
    shown = json.loads(nurture("leads", "show", "crm-1", "--json").stdout)
    assert len(shown["enrollments"]) == 1


def test_json_lines_upsert_by_external_id_and_by_email(nurture, project):
    path = project / "leads.jsonl"
    lines = [
        {
            "id": "crm-1",
            "name": "Ana Ruiz",
            "email": "ana@example.com",
            "funnel": "Ads",
            "temperature": "Warm",
        },
        {"name": "Bo Berg", "email": "bo@example.com", "funnel": "website", "score": 30},
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    assert import_json(nurture, path)["created"] == 2
    updates = [
        {"id": "crm-1", "name": "Ana Ruiz-Gil", "funnel": "Ads", "tags": ["client"]},
        {"name": "Bo Berg", "email": "bo@example.com", "funnel": "website", "score": 35},
        "not json",
        {"name": "Cy", "funnel": "nowhere"},
    ]
    path.write_text(
        "\n".join(json.dumps(u) if isinstance(u, dict) else u for u in updates), encoding="utf-8"
    )
    result = import_json(nurture, path)
    assert (result["created"], result["updated"]) == (0, 2)
    assert result["errors"] == [
        {"row": 3, "message": "invalid JSON: Expecting value at column 1"},
        {"row": 4, "message": "no funnel 'nowhere'; known funnels: Ads, Website"},
    ]
    ana, bo = leads(nurture)
    assert (ana["name"], ana["email"], ana["tags"], ana["funnel"]) == (
        "Ana Ruiz-Gil",
        "ana@example.com",
        ["client"],
        "Ads",
    )
    assert bo["score"] == 35


def test_a_lead_twice_in_one_file_is_rejected_the_second_time(nurture, project):
    """A second row for a lead would overwrite the first on every run: the file could never
    import to "nothing changed". It is reported, whatever case the email is written in."""
    path = project / "leads.csv"
    path.write_text(
        "name,email,score,external_id\nAna,Ana@Example.com,10,\nAna Ruiz,ana@example.com,20,\n"
        "Bo,bo@example.com,5,crm-1\nBo Li,bo.li@example.com,6,crm-1\n"
    )
    result = import_json(nurture, path, "--funnel", "website")
    assert (result["created"], result["updated"]) == (2, 0)
    assert result["errors"] == [
        {"row": 3, "message": "email ana@example.com is on row 2 already: one row per lead"},
        {"row": 5, "message": "external id crm-1 is on row 4 already: one row per lead"},
    ]
    assert [(lead["name"], lead["email"], lead["score"]) for lead in leads(nurture)] == [
        ("Ana", "ana@example.com", 10), ("Bo", "bo@example.com", 5),
    ]  # fmt: skip
    again = import_json(nurture, path, "--funnel", "website")
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 2)


def test_batches_written_while_the_next_is_read(nurture, project, monkeypatch):
    """One row a batch: on Postgres each batch is written while the next one is read."""
    monkeypatch.setattr("nurture.leads.imports.BATCH", 1)
    path = project / "leads.csv"
    path.write_text(
        "name,email,score,temperature,funnel\nAna,ana@example.com,10,Warm,website\n"
        "Bo,bo@example.com,5,Warm,nowhere\nCy,cy@example.com,50,Hot,ads\n"
        "Ana Ruiz,ana@example.com,20,Warm,website\n",
        encoding="utf-8",
    )
    result = import_json(nurture, path)
    assert (result["created"], result["updated"], result["enrolled"]) == (2, 0, 2)
    assert [error["row"] for error in result["errors"]] == [3, 5]
    assert "no funnel 'nowhere'" in result["errors"][0]["message"]
    assert "on row 2 already" in result["errors"][1]["message"]
    assert [(lead["name"], lead["score"]) for lead in leads(nurture)] == [("Ana", 10), ("Cy", 50)]


def test_a_row_without_a_funnel_is_rejected(nurture, project):
    path = project / "leads.csv"
    path.write_text("name\nAna\n", encoding="utf-8")
    result = import_json(nurture, path)
    assert result["errors"] == [
        {"row": 2, "message": "no funnel: give --funnel or a funnel column"}
    ]


def test_headers_map_by_alias():
    assert [header_key(h) for h in ("Full Name", "e-mail", "Lead_Score", "TZ", "goal")] == [
        "name",
        "email",
        "score",
        "timezone",
        "fields.goal",
    ]


def test_a_large_import_normalises_phones_in_a_helper_with_the_same_results(
    nurture, project, monkeypatch
):
    monkeypatch.setattr(
        "nurture.rules.contacts.PARALLEL_FROM", 1
    )  # this small file counts as large
    monkeypatch.setattr("nurture.leads.imports.BATCH", 2)
    rows = ["Name,Email,Phone,Temperature"]
    rows += [f"Lead {n},lead{n}@example.com,+1 415 555 {100 + n:04d},Warm" for n in range(5)]
    rows += [
        "Bad Number,bad@example.com,+1 415 555,Warm",
        "No Code,nc@example.com,612 345 678,Warm",
    ]
    path = project / "phones.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = import_json(nurture, path, "--funnel", "website")
    assert (result["created"], result["enrolled"]) == (5, 5)
    assert result["errors"] == [
        {"row": 7, "message": "invalid phone '+1 415 555': not a valid number"},
        {"row": 8, "message": "invalid phone '612 345 678': no country code "
                              "(write it as +<country><number> or set phone_region)"},
    ]  # fmt: skip
    assert [lead["phone"] for lead in leads(nurture)] == [
        f"+1415555{100 + n:04d}" for n in range(5)
    ]


def test_leads_matched_alike_share_one_stored_candidate_list(nurture, project, store):
    rows = ["Name,Email,Temperature"]
    rows += [f"Lead {n},lead{n}@example.com,{('Warm', 'Cold', 'Warm')[n % 3]}" for n in range(9)]
    path = project / "leads.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert import_json(nurture, path, "--funnel", "website")["created"] == 9
    with store.begin() as connection:
        stored = connection.execute(select(MatchCandidates.candidates)).scalars().all()
    assert len(stored) == 2  # one list for the Warm leads, one for the Cold ones
    cold = json.loads(nurture("explain", "lead1@example.com", "--json").stdout)["decision"]
    warm = json.loads(nurture("explain", "lead3@example.com", "--json").stdout)["decision"]
    assert (cold["winner"], warm["winner"]) == (None, "Welcome")
    assert cold["candidates"][0]["checks"][0]["actual"] == "'Cold'"
    assert warm["candidates"][0]["checks"][0]["actual"] == "'Warm'"


def test_a_header_naming_a_field_twice_or_a_row_too_long_is_reported(nurture, project):
    twice = project / "twice.csv"
    twice.write_text("name,Email,score,E-mail\nAna,ana@example.com,10,ana@work.example.com\n")
    result = nurture("leads", "import", str(twice), "--funnel", "website")
    assert result.exit_code == 1 and leads(nurture) == []
    assert "columns 2 ('Email') and 4 ('E-mail') are both email: keep one" in result.output
    long = project / "long.csv"
    long.write_text("name,email\nAna,ana@example.com,extra\nBo,bo@example.com\n")
    imported = import_json(nurture, long, "--funnel", "website")
    assert imported["created"] == 1
    assert imported["errors"] == [{"row": 2, "message": "3 values, but the header names 2 columns"}]


def rejected(result: dict) -> dict[int, str]:
    return {error["row"]: error["message"] for error in result["errors"]}


def test_a_nul_or_a_lone_surrogate_is_its_rows_error_and_the_other_rows_land(nurture, project):
    path = project / "leads.csv"
    path.write_text(
        "External ID,Full Name,Email,Goal\n"
        "crm-1,Ana Ruiz,ana@example.com,strength\n"
        "crm-2,Bo\x00Berg,bo@example.com,\n"
        "crm-\x003,Cy Chan,cy@example.com,\n"
        "crm-4,Dee Diaz,dee@example.com,lose\x00weight\n"
        "crm-5,Eve Ek,eve@example.com,\n",
        encoding="utf-8",
    )
    result = nurture("leads", "import", str(path), "--funnel", "website")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[:-1] == [
        "error: row 3: name contains a NUL character (\\x00): remove it",
        "error: row 4: external_id contains a NUL character (\\x00): remove it",
        "error: row 5: fields.Goal contains a NUL character (\\x00): remove it",
    ]
    assert "bo@example.com" not in result.output  # no SQL statement and its values
    assert [lead["name"] for lead in leads(nurture)] == ["Ana Ruiz", "Eve Ek"]
    lines = project / "leads.jsonl"
    lines.write_text(
        '{"name": "Fay\\u0000Fox", "email": "fay@example.com"}\n'
        '{"name": "Gus \\ud800", "email": "gus@example.com"}\n'
        '{"name": "Hal Ho", "email": "hal@example.com", "fields": {"note\\udfff": "x"}}\n'
        '{"name": "Ida Ito", "email": "ida@example.com"}\n'
    )
    imported = import_json(nurture, lines, "--funnel", "website")
    assert rejected(imported) == {
        1: "name contains a NUL character (\\x00): remove it",
        2: "name contains a lone surrogate ('\\ud800'), which is not valid Unicode text",
        3: "custom field name 'note\\udfff' contains a lone surrogate ('\\udfff'), which is "
        "not valid Unicode text",
    }
    assert imported["created"] == 1 and leads(nurture)[-1]["name"] == "Ida Ito"


def test_a_value_over_its_limit_is_refused_naming_the_field_and_the_limit(nurture, project):
    one_word = "A" * 150  # longer than first_name's column, within name's
    path = project / "leads.csv"
    path.write_text(
        "External ID,Name,Email,Notes\n"
        f"crm-1,{one_word},ana@example.com,\n"
        f"crm-2,{'B' * 201},bo@example.com,\n"
        f"{'c' * 201},Cy Chan,cy@example.com,\n"
        f"crm-4,Dee Diaz,dee@example.com,{'d' * 10_001}\n"
        f"crm-5,Eve Ek,eve@example.com,{'e' * 200_000}\n"  # over csv's field_size_limit
        "crm-6,Fay Fox,fay@example.com,\n",
        encoding="utf-8",
    )
    imported = import_json(nurture, path, "--funnel", "website")
    assert rejected(imported) == {
        3: "name is 201 characters long, over the limit of 200",
        4: "external_id is 201 characters long, over the limit of 200",
        5: "fields.Notes is 10,001 characters long, over the limit of 10,000",
        6: "fields.Notes is 200,000 characters long, over the limit of 10,000",
    }
    first, last = leads(nurture)
    assert (first["name"], first["first_name"]) == (one_word, "A" * 100)
    assert last["name"] == "Fay Fox"


def test_a_quote_left_open_is_reported_and_the_rows_it_swallowed_land(nurture, project):
    path = project / "leads.csv"
    path.write_text(
        "name,email,source\n"
        "Ana Ruiz,ana@example.com,web\n"
        '"Bo Berg,bo@example.com,web\n'  # the quote is never closed: it takes in every row after
        "Cy Chan,cy@example.com,ads\n"
        "Dee Diaz,dee@example.com,web\n",
        encoding="utf-8",
    )
    result = nurture("leads", "import", str(path), "--funnel", "website")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[:-1] == [
        "error: row 3: a quote opened on this row is not closed, so lines 3-5 read as one row "
        "(the rows after it are read on their own): close the quote, or write a quote that "
        'is part of a value as ""'
    ]
    assert [lead["name"] for lead in leads(nurture)] == ["Ana Ruiz", "Cy Chan", "Dee Diaz"]


def test_a_quote_closed_rows_later_or_text_after_a_quote_is_its_rows_error(nurture, project):
    path = project / "leads.csv"
    path.write_text(
        "name,email,source\n"
        '"Ana Ruiz,ana@example.com,web\n'  # closed by the next row's first quote
        'Bo Berg,"bo@example.com",ads\n'
        '"Cy" Chan,cy@example.com,web\n'
        '"Dee\nDiaz",dee@example.com,web\n'  # a value may hold a line break
        "Eve Ek,eve@example.com,web\n",
        encoding="utf-8",
    )
    imported = import_json(nurture, path, "--funnel", "website")
    assert sorted(rejected(imported)) == [2, 4]
    assert rejected(imported)[2].startswith(
        "a quote opened on this row is not closed, so lines 2-3"
    )
    assert rejected(imported)[4] == (
        'a value has text after its closing quote: quote the whole value ("Ana Ruiz")'
    )
    names = [lead["name"] for lead in leads(nurture)]
    assert names == ["Bo Berg", "Dee\nDiaz", "Eve Ek"]


def test_a_quote_that_swallows_rows_but_is_closed_is_still_reported(nurture, project):
    path = project / "leads.csv"
    path.write_text(  # no CSV error: the quote closes at the end of a line, just before a comma
        "name,email,source\n"
        '"Ana Ruiz,ana@example.com,web\n'
        'Bo Berg,bo@example.com,ads",\n'
        "Cy Chan,cy@example.com,web\n",
        encoding="utf-8",
    )
    imported = import_json(nurture, path, "--funnel", "website")
    assert "lines 2-3 read as one row" in rejected(imported)[2]
    assert rejected(imported)[3] == "4 values, but the header names 3 columns"  # read on its own
    assert [lead["name"] for lead in leads(nurture)] == ["Cy Chan"]


def test_json_lines_with_huge_numbers_or_deep_nesting_are_one_rows_error(nurture, project):
    path = project / "leads.jsonl"
    path.write_text(
        '{"name": "Ana Ruiz", "email": "ana@example.com"}\n'
        f'{{"name": "Bo Berg", "score": {"9" * 5000}}}\n'
        f'{{"name": "Cy Chan", "fields": {{"goal": {"[" * 100_000}{"]" * 100_000}}}}}\n'
        f'{{"name": "Dee Diaz", "score": "{"9" * 5000}"}}\n'
        '{"name": "Eve Ek", "fields": {"weight": NaN, "height": 1e400}}\n'
        '{"name": "Fay Fox", "fields": {"visits": 10000000000000000000000}}\n'
        '{"name": "Gus Gil", "email": "gus@example.com"}\n'
    )
    imported = import_json(nurture, path, "--funnel", "website")
    assert rejected(imported) == {
        2: "invalid JSON: a number has more than 4,300 digits",
        3: "invalid JSON: lists or objects nest too deeply",
        4: "score '9999999999999999999999999999999999999999'... (5,000 characters) is not a "
        "whole number",
        5: "fields.weight is nan, not a usable number",
        6: "fields.visits is a number over 18 digits long: give it as text",
    }
    assert [lead["name"] for lead in leads(nurture)] == ["Ana Ruiz", "Gus Gil"]


def test_a_header_with_a_nul_or_an_overlong_name_is_the_files_error(nurture, project):
    path = project / "leads.csv"
    path.write_text(f"name,email,{'x' * 101}\nAna Ruiz,ana@example.com,1\n")
    result = nurture("leads", "import", str(path), "--funnel", "website")
    assert result.exit_code == 1 and leads(nurture) == []
    assert "the header's column 3 ('xxxxxxxx" in result.stderr
    assert "is longer than a custom field's name may be (100 characters)" in result.stderr
    path.write_text("name,email,go\x00al\nAna Ruiz,ana@example.com,1\n")
    result = nurture("leads", "import", str(path), "--funnel", "website")
    assert "error: the header's column 3 contains a NUL character (\\x00)" in result.stderr
