"""What a newcomer tripped over in the CLI: piped tables, did-you-mean, a task done twice, a
score of 0, names with brackets or emoji codes, `run --once --now` in the help."""

import json

import pytest
from builders import sequence, step, write

import nurture

LONG_FUNNELS = ["Instagram Ads Spring Campaign", "Website Contact Form", "Referral Partners"]
WHATSAPP = {
    "name": "WhatsApp hello",
    "action_type": "send_whatsapp_message",
    "action_config": {"message": "Hi {{ lead.first_name }}"},
}
TASK = step("Call", "create_task")


@pytest.fixture
def nurture_cli(run_store, project):
    write(
        project,
        "welcome.yaml",
        sequence("Warm Lead Welcome Sequence", WHATSAPP, TASK, funnels=LONG_FUNNELS),
    )
    assert run_store("apply", "--yes").exit_code == 0
    return run_store


def test_a_pipe_gets_whole_values_in_tables_never_words_broken_or_cut(nurture_cli):
    # nurture.invoke's stdout is not a terminal: the same as `nurture ... | cat`
    listed = nurture_cli("sequences", "list").stdout
    assert "Warm Lead Welcome Sequence" in listed
    assert "Instagram Ads Spring Campaign, Referral Partners, Website Contact Form" in listed
    assert "…" not in listed
    shown = nurture_cli("sequences", "show", "warm-lead-welcome-sequence").stdout
    assert "send_whatsapp_message" in shown
    [version_row] = [line for line in shown.splitlines() if line.startswith("│ v1")]
    applied = json.loads(
        nurture_cli("sequences", "show", "warm-lead-welcome-sequence", "--json").stdout
    )
    assert applied["versions"][0]["applied_at"][:16].replace("T", " ") in version_row
    row_lines = [line for line in listed.splitlines() if "Warm Lead" in line]
    assert len(row_lines) == 1  # one record, one line


def test_sequences_show_of_a_typo_suggests_the_sequence(nurture_cli):
    for typo in ("welcom", "warm-lead-welcom"):
        shown = nurture_cli("sequences", "show", typo)
        assert shown.exit_code == 1
        assert shown.stderr == (
            f"error: no sequence {typo!r} in the store (did you mean 'Warm Lead Welcome Sequence'?)\n"
        )
    assert "did you mean" not in nurture_cli("sequences", "show", "xyz").stderr
    enabled = nurture_cli("sequences", "enable", "welcom")  # the files answer the same
    assert enabled.stderr.endswith("(did you mean 'Warm Lead Welcome Sequence'?)\n")
    tested = nurture_cli("test", "welcom", "--lead-field", "name=Ana")
    assert tested.stderr.endswith("(did you mean 'Warm Lead Welcome Sequence'?)\n")


def test_a_task_done_twice_says_the_second_time_it_was_already_done(nurture_cli):
    nurture_cli("leads", "add", "--funnel", "referral-partners", "--name", "Ana Ruiz")
    nurture_cli("run", "--once")
    first = nurture_cli("tasks", "done", "1")
    assert first.exit_code == 0 and first.stderr == "task 1 done: Call Ana Ruiz\n"
    again = nurture_cli("tasks", "done", "1")
    assert again.exit_code == 0
    assert (
        again.stderr.startswith("task 1 was already done on ") and "Call Ana Ruiz" in again.stderr
    )
    done_at = json.loads(nurture_cli("tasks", "list", "--all", "--json").stdout)[0]["done_at"]
    assert done_at[:16].replace("T", " ") in again.stderr  # the first time, kept


def test_leads_list_shows_a_score_of_zero(nurture_cli):
    nurture_cli(
        "leads", "add", "--funnel", "referral-partners", "--name", "Zoe Zero", "--score", "0"
    )
    [row] = [line for line in nurture_cli("leads", "list").stdout.splitlines() if "Zoe" in line]
    assert [cell.strip() for cell in row.split("│")][6] == "0"


def test_a_name_with_brackets_is_printed_as_written(nurture_cli):
    nurture_cli("leads", "add", "--funnel", "referral-partners", "--name", "Ana Ruiz")
    updated = nurture_cli("leads", "update", "1", "--name", "Ana [VIP] Ruiz")
    assert updated.stderr == "Updated lead 1 Ana [VIP] Ruiz.\n"
    converted = nurture_cli("leads", "convert", "1")
    assert converted.stderr.startswith("Converted lead 1 Ana [VIP] Ruiz; stopped ")
    assert "\\" not in nurture_cli("leads", "show", "1").stdout


def test_run_help_documents_once_and_now_with_an_example():
    boxed = nurture.invoke(["run", "--help"]).stdout
    shown = " ".join(boxed.translate(str.maketrans("│╭╮╰╯─", "      ")).split())
    assert "--now" in shown and "With --once: run as if it" in shown
    assert "nurture run --once --now 2026-12-08T09:00:00Z" in shown


def test_an_error_at_line_100_reads_as_a_line_number_not_an_emoji(run, project):
    (project / "sequences" / "long.yaml").write_text("#\n" * 99 + "name: Long\nstepz: []\n")
    result = run("plan")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: sequences/long.yaml:100:1: missing required field 'steps'\n"
        "error: sequences/long.yaml:101:1: unknown key 'stepz' (did you mean 'steps'?)\n"
    )


def test_a_lead_named_with_an_emoji_code_is_printed_as_written(nurture_cli):
    nurture_cli("leads", "add", "--funnel", "referral-partners", "--name", "Bo :fire: Diaz")
    assert "Bo :fire: Diaz" in nurture_cli("leads", "list").stdout
    assert nurture_cli("leads", "update", "1", "--score", "3").stderr == (
        "Updated lead 1 Bo :fire: Diaz.\n"
    )


def test_completion_is_offered_once_by_nurture_not_by_each_command():
    assert "--install-completion" in nurture.invoke(["--help"]).stdout
    for command in (["run"], ["validate"], ["leads", "add"], ["db", "upgrade"]):
        assert "--install-completion" not in nurture.invoke([*command, "--help"]).stdout, command
