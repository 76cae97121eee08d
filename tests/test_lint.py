"""Lint in `nurture validate`: warnings about sequences that will not do what their author expects."""

from pathlib import Path

from builders import sequence, step, write

WINDOW = {"days": "mon-fri", "start": "09:00", "end": "17:00"}


def validate(run, *args: str):
    result = run("validate", *args)
    return result, [line for line in result.output.splitlines() if "warning:" in line]


def test_two_sequences_decided_only_by_name_are_reported_with_an_example_lead(project: Path, run):
    write(
        project,
        "a.yaml",
        sequence(
            "Alpha",
            funnels=["web"],
            trigger_conditions={
                "lead_score": {"min": 20, "max": 60},
                "lead_status": ["New", "Contacted"],
            },
        ),
    )
    write(
        project,
        "b.yaml",
        sequence(
            "Beta",
            funnels=["web"],
            trigger_conditions={"lead_score": {"min": 50}, "lead_status": "contacted"},
        ),
    )
    write(
        project,
        "c.yaml",
        sequence(
            "Gamma",
            funnels=["web"],
            priority=5,
            trigger_conditions={"lead_score": {"min": 50}, "lead_status": "New"},
        ),
    )
    result, warnings = validate(run)
    assert result.exit_code == 0  # warnings alone do not fail
    overlap = [w for w in warnings if "only the name decides" in w]
    assert overlap == [
        "sequences/b.yaml:1:1: warning: in funnel web, Alpha and Beta can take the same lead at "
        "priority 0 with as many conditions: only the name decides (Alpha wins); e.g. a lead with "
        "score 50, status 'Contacted'. Give one a higher priority [same-priority]"
    ]
    assert run("validate", "--strict").exit_code == 1


def test_scores_and_statuses_no_sequence_of_a_funnel_takes(project: Path, run):
    write(
        project,
        "a.yaml",
        sequence(
            "Alpha",
            funnels=["web", "ads"],
            trigger_conditions={"lead_score": {"min": 30, "max": 60}, "lead_status": "New"},
        ),
    )
    write(
        project,
        "b.yaml",
        sequence(
            "Beta",
            funnels=["ads"],
            trigger_conditions={"lead_score": {"min": 80}, "lead_status": "Lost"},
        ),
    )
    _, warnings = validate(run)
    assert (
        "sequences/a.yaml:5:3: warning: funnel ads: no sequence takes leads with a score of 0-29 [coverage]"
        in warnings
    )
    assert any(
        "funnel ads: no sequence takes leads with a score of 61-79 [coverage]" in w
        for w in warnings
    )
    assert any(
        "funnel web: no sequence takes leads with status Lost [coverage]" in w for w in warnings
    )
    assert not any("funnel ads: no sequence takes leads with status" in w for w in warnings)


def test_a_delay_that_always_lands_outside_the_window_and_a_short_window(project: Path, run):
    short = WINDOW | {"start": "12:00", "end": "12:30"}
    write(
        project,
        "a.yaml",
        sequence("Alpha", step("Hi"), step("Later", delay_hours=16), send_window=WINDOW),
    )
    write(
        project,
        "b.yaml",
        sequence("Beta", step("Hi"), step("Fine", delay_days=1), send_window=short),
    )
    _, warnings = validate(run)
    assert any(
        "step later: 16h after the previous message (sent mon, tue, wed, thu, fri 09:00-17:00) "
        "always falls outside the send window, so it always waits for the next opening [send-window]"
        in w
        and w.startswith("sequences/a.yaml:")
        for w in warnings
    )
    assert any("b.yaml" in w and "open only 30 minutes a day" in w for w in warnings)
    assert not any("step fine" in w for w in warnings)


def test_a_condition_that_can_never_hold(project: Path, run):
    never = step("Never", conditions={"tags": ["vip"], "not_tags": ["VIP"]})
    other_source = step("Ads only", conditions={"lead_source": "Facebook Ads"})
    doc = sequence(
        "Alpha", step("Hi"), never, other_source, trigger_conditions={"lead_source": "Web Form"}
    )
    write(project, "a.yaml", doc)
    _, warnings = validate(run)
    assert any(
        "step never: condition can never hold: tags and not_tags both name vip" in w
        for w in warnings
    )
    assert any(
        "step ads-only: condition can never hold: lead_source Facebook Ads" in w for w in warnings
    )


def test_clean_sequences_pass_strict(project: Path, run):
    write(
        project,
        "a.yaml",
        sequence(
            "Alpha", step("Hi"), step("Later", delay_days=1), funnels=["web"], send_window=WINDOW
        ),
    )
    result = run("validate", "--strict")
    assert result.exit_code == 0 and "warning" not in result.output


def test_the_time_since_the_last_message_counts_and_so_do_the_days(project: Path, run):
    task = {"name": "Task", "action_type": "create_task", "action_config": {"title": "Call"}}
    weekdays = WINDOW | {"days": "mon"}
    write(
        project,
        "a.yaml",
        sequence(
            "Alpha",
            step("Hi"),
            task | {"delay_hours": 10},
            step("Then", delay_hours=6),
            send_window=WINDOW,
        ),
    )
    write(
        project,
        "b.yaml",
        sequence("Beta", step("Hi"), step("Next day", delay_days=1), send_window=weekdays),
    )
    write(
        project,
        "c.yaml",
        sequence("Gamma", step("Hi"), step("A week on", delay_days=7), send_window=weekdays),
    )
    _, warnings = validate(run)
    assert any("a.yaml" in w and "step then: 16h after the previous message" in w for w in warnings)
    assert any(
        "b.yaml" in w and "step next-day: 1d after the previous message (sent mon" in w
        for w in warnings
    )
    assert not any("c.yaml" in w for w in warnings)


def test_rules_a_project_silences_in_nurture_toml(project: Path, run):
    write(
        project,
        "a.yaml",
        sequence("Alpha", funnels=["web"], trigger_conditions={"lead_score": {"min": 50}}),
    )
    assert any("[coverage]" in w for w in validate(run)[1])
    with (project / "nurture.toml").open("a") as toml:
        toml.write('lint_ignore = ["coverage"]\n')
    result = run("validate", "--strict")
    assert result.exit_code == 0 and "warning" not in result.output


def test_a_step_for_converted_leads_in_a_sequence_that_stops_on_conversion(project: Path, run):
    won = step("Welcome aboard", conditions={"lead_status": ["won", "Client"]})
    write(project, "a.yaml", sequence("Alpha", step("Hi"), won))
    write(project, "b.yaml", sequence("Beta", step("Hi"), won, stop_on_conversion=False))
    _, warnings = validate(run)
    assert [w.split(": warning: ")[1] for w in warnings if "welcome-aboard" in w] == [
        "step welcome-aboard: condition can never hold: lead_status won, Client converts the "
        "lead, and this sequence stops on conversion [never-holds]"
    ]
    assert warnings[0].startswith("sequences/a.yaml:")


def test_steps_after_a_step_that_always_stops_are_unreachable(project: Path, run):
    steps = [step("Hi"), step("Last word", stop=True), step("Never"), step("Nor this")]
    write(project, "a.yaml", sequence("Alpha", *steps))
    guarded = step("Stop for clients", "wait", conditions={"tags": ["client"]}, stop=True)
    write(project, "b.yaml", sequence("Beta", step("Hi"), guarded, step("After")))
    result, warnings = validate(run)
    assert result.exit_code == 0
    assert [w for w in warnings if "[unreachable]" in w] == [
        "sequences/a.yaml:12:3: warning: step last-word always ends the sequence (stop: true "
        "without conditions), so never, nor-this never run [unreachable]"
    ]
    strict = run("validate", "--strict")  # warnings become errors
    assert strict.exit_code == 1 and "warning" not in strict.output
    assert "sequences/a.yaml:12:3: step last-word always ends the sequence" in strict.output
    assert strict.output.rstrip().endswith("2 files, 1 error")


def test_a_broken_file_does_not_show_as_a_coverage_gap(project: Path, run):
    high, low = {"lead_score": {"min": 50}}, {"lead_score": {"max": 49}}
    write(project, "a.yaml", sequence("Alpha", funnels=["web"], trigger_conditions=high))
    write(
        project, "b.yaml", sequence("Beta", funnels=["web"], trigger_conditions=low, priority="x")
    )
    result, warnings = validate(run)
    assert result.exit_code == 1 and "priority" in result.output
    assert not [w for w in warnings if "[coverage]" in w]  # Beta takes 0-49 once it is fixed
