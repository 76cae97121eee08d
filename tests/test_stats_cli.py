"""`nurture stats` and `nurture logs` as a user runs them, on a known history, on both stores."""

import csv
import io
import json
import re
import threading
from datetime import timedelta

import histories
import pytest
from builders import sequence, step, write
from enrolling import T0, drain, enroll

from nurture.cli import figures, output
from nurture.insights.logs import LogFilter, follow
from nurture.store.db import open_store


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch):
    """Tables as on a 200-column terminal, one line per row."""
    monkeypatch.setattr(output.out, "width", 200)


def test_stats_shows_every_sequence_with_its_outcomes(run_store, store, project):
    histories.build(store, project)
    result = run_store("stats")
    assert result.exit_code == 0, result.output
    welcome = next(line for line in result.output.splitlines() if "Welcome" in line)
    # assigned, active, completed, converted, stopped, failed, rate, avg, median, to conversion,
    # engaged (Cat's conversion)
    assert welcome.split() == [
        "Welcome",
        "6",
        "0",
        "5",
        "1",
        "0",
        "0",
        "16.7%",
        "1d",
        "2h",
        "1d",
        "2h",
        "1h",
        "16.7%",
    ]
    assert "Funnels: no leads arrived through a funnel" in result.output


def test_stats_json_is_the_figures(run_store, store, project):
    histories.build(store, project)
    data = json.loads(run_store("stats", "--json").output)
    welcome = next(row for row in data["sequences"] if row["sequence"] == "Welcome")
    assert (welcome["assigned"], welcome["median_completion_seconds"]) == (6, 93600.0)
    assert "channels" not in data  # opt-in: --by channel or --by day
    channels = json.loads(run_store("stats", "--by", "channel", "--json").output)["channels"]
    assert {c["channel"]: c["sent"] for c in channels} == {"email": 4, "sms": 12}


def test_stats_sequence_shows_steps_dropoff_bars_and_reasons(run_store, store, project):
    histories.build(store, project)
    result = run_store("stats", "welcome")
    assert result.exit_code == 0, result.output
    output = result.output
    hello = next(line for line in output.splitlines() if "send_sms" in line)
    assert hello.split() == [
        "hello",
        "send_sms",
        "6",
        "7",
        "5",
        "0",
        "1",
        "1",
        "100.0%",
        "1.2",
        "0m",
    ]
    bars = [line for line in output.splitlines() if "█" in line]
    assert len(bars) == 3 and bars[0].count("█") == 40 and bars[1].count("█") == 33
    assert "tip: failed 1x: no email address" in output
    assert "nudge: skipped 1x: conditions not met: ✗ not_tags: wants none of client" in output


def test_stats_csv_of_one_sequence_is_its_steps(run_store, store, project):
    histories.build(store, project)
    rows = list(csv.DictReader(io.StringIO(run_store("stats", "Welcome", "--csv").output)))
    assert [(r["step_id"], r["reached"], r["success_rate"]) for r in rows] == [
        ("hello", "6", "1.0"), ("tip", "5", "0.8"), ("nudge", "5", "1.0"),
    ]  # fmt: skip


def test_stats_by_day_and_by_version(run_store, store, project):
    histories.build(store, project)
    days = list(csv.DictReader(io.StringIO(run_store("stats", "--by", "day", "--csv").output)))
    assert [(d["channel"], d["day"], d["sent"], d["opted_out"]) for d in days] == [
        ("email", "2025-03-03", "4", "0"),
        ("sms", "2025-03-03", "8", "1"),
        ("sms", "2025-03-04", "4", "1"),
    ]
    versions = run_store("stats", "welcome", "--by", "version").output
    assert "v1 reached" in versions
    assert next(line for line in versions.splitlines() if "rate" in line).split() == [
        "conversion", "rate", "16.7%",
    ]  # fmt: skip


def test_bad_input_is_a_clear_error(run_store, store, project):
    histories.build(store, project)
    for args, message in [
        (("stats", "welcom"), "no sequence 'welcom' in the store (did you mean 'Welcome'?)"),
        (("stats", "--since", "last week"), "--since 'last week': use a duration"),
        (("stats", "--since", "1d", "--until", "7d"), ") is later than until ("),
        (("stats", "--funnel", "tiktok"), "no funnel 'tiktok'"),
        (("logs", "--status", "faild"), "(did you mean 'failed'?)"),
        (("logs", "--lead", "nobody@example.com"), "no lead 'nobody@example.com'"),
        (("stats", "--json", "--csv"), "--json or --csv: one output at a time"),
    ]:
        result = run_store(*args)
        assert result.exit_code == 1 and message in result.output, (args, result.output)
        assert "Traceback" not in result.output


def test_logs_newest_first_with_filters(run_store, store, project):
    histories.build(store, project)
    entries = json.loads(run_store("logs", "--json", "--limit", "3").output)
    assert [e["id"] for e in entries] == sorted((e["id"] for e in entries), reverse=True)
    assert (entries[0]["lead"], entries[0]["step_id"], entries[0]["lag_seconds"]) == (
        "Fay Kim", "nudge", 3000.0,
    )  # fmt: skip
    failed = json.loads(run_store("logs", "--status", "failed", "--json").output)
    assert [(e["lead"], e["step_id"], e["error"]) for e in failed] == [
        ("Dan Poe", "tip", "no email address")
    ]
    fay = json.loads(run_store("logs", "--lead", "1", "--sequence", "welcome", "--json").output)
    assert [e["step_id"] for e in fay] == ["nudge", "tip", "hello"]  # Ann, newest first
    retried = run_store("logs", "--step", "hello", "--status", "retry").output
    assert "Fay Kim" in retried and "rate limited" in retried
    since = json.loads(run_store("logs", "--since", "2025-03-04", "--json").output)
    assert len(since) == 6 and all(e["started_at"] >= "2025-03-04" for e in since)
    assert since[0]["started_at"].startswith("2025-03-") and "T" in since[0]["started_at"]


def test_logs_in_a_narrow_terminal_or_a_pipe_keep_one_line_an_entry(
    run_store, store, project, monkeypatch
):
    monkeypatch.setattr(output.out, "width", 80)
    histories.build(store, project)
    lines = run_store("logs", "--status", "failed").output.splitlines()
    assert len(lines) == 2 and lines[1] == "      no email address"
    assert re.fullmatch(r"\d+  2025-03-\d\d \d\d:\d\d  failed  Dan Poe › .+ › tip \(attempt 1, lag .+\)",
                        lines[0])  # fmt: skip


def test_follow_streams_new_entries_as_they_land(store, project):
    histories.build(store, project)
    stop = threading.Event()
    seen: list[str] = []

    def reader() -> None:
        with open_store(store.url) as other:
            for batch in follow(other, LogFilter(), after=21, poll=0.05, stop=stop.is_set):
                seen.extend(entry["lead"] for entry in batch)
                if len(seen) >= 2:
                    stop.set()

    thread = threading.Thread(target=reader)
    thread.start()
    later = T0 + timedelta(days=3)
    enroll(store, "Short", now=later, name="Kim New")
    enroll(store, "Short", now=later, name="Lou New")
    drain(store, later)
    thread.join(timeout=20)
    stop.set()
    assert seen == ["Kim New", "Lou New"]


def test_stats_csv_opens_in_a_spreadsheet_as_text_whatever_the_names(run_store, project):
    names = ['=HYPERLINK("https://evil.example","open")', "+1 call", "-2 days", "@SUM(A1)"]
    for number, name in enumerate(names):
        write(project, f"s{number}.yaml", sequence(name, step("Hello"), funnels=["website"]))
    assert run_store("apply", "--yes").exit_code == 0
    added = run_store("leads", "add", "-f", "website", "--name", "Ana", "--email", "a@x.co")
    assert added.exit_code == 0, added.output
    result = run_store("stats", "--csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert sorted(row["sequence"] for row in rows) == sorted("'" + name for name in names)
    assert {row["assigned"] for row in rows} <= {"0", "1"}  # figures stay numbers
    steps = run_store("stats", names[0], "--csv").output
    assert list(csv.DictReader(io.StringIO(steps)))[0]["step_id"] == "hello"


@pytest.mark.parametrize(
    ("value", "written"),
    [("=1+1", "'=1+1"), ("\tx", "'\tx"), ("\rx", "'\rx"), ("a=b", "a=b"), (-3, -3), (0.5, 0.5)],
)
def test_a_csv_cell_that_starts_like_a_formula_gets_a_quote(value, written):
    assert figures.as_text(value) == written


def test_stats_by_version_shows_each_versions_steps_in_the_newest_order(run_store, store, project):
    histories.moved(store, project)
    result = run_store("stats", "offer", "--by", "version")
    assert result.exit_code == 0, result.output
    table = result.output[result.output.index("Drop-off by version") :].splitlines()
    rows = [line.split() for line in table[4:] if line.strip()]
    assert rows == [
        ["hello", "1", "(100.0%)", "3", "(100.0%)"],
        ["guide", "(removed)", "1", "(100.0%)"],  # only under v1, which has it
        ["tip", "2", "(66.7%)"],  # only under v2
        ["bye", "1", "(100.0%)", "3", "(100.0%)"],
    ]
    tip = next(line for line in table if line.strip().startswith("tip"))
    assert tip.index("2 (66.7%)") >= table[2].index("v2 reached") - 2, table  # the v2 column
