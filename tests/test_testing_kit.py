"""nurture.testing as a user's own tests use it: a sequence file, a lead, what it receives and when."""

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import select

from nurture.engine.dispatch import run_due
from nurture.errors import NotFound, SpecError
from nurture.store.tables import Lead, Sequence
from nurture.testing import MemoryChannel, dry_run, enroll_many, load_project, project_store

TESTING_PAGE = Path(__file__).parent.parent / "docs" / "concepts" / "testing.md"
WELCOME = """\
name: Welcome
steps:
  - name: Hello
    action_type: send_sms
    action_config: {message: "Hi {{ lead.first_name }}, welcome!"}
  - name: Guide
    action_type: send_email
    action_config: {subject: Your guide, body: "Hello {{ lead.name }}, here it is."}
    delay_days: 2
  - name: Check in
    action_type: send_sms
    action_config: {message: "How is it going, {{ lead.first_name }}?"}
    delay_days: 3
"""


@pytest.fixture
def welcome(tmp_path: Path) -> Path:
    path = tmp_path / "welcome.yaml"
    path.write_text(WELCOME, encoding="utf-8")
    return path


def test_a_lead_dry_run_through_a_sequence_file_receives_each_message_on_its_day(welcome: Path):
    result = dry_run(welcome, {"name": "Ana Ruiz"})
    assert [(m.day, m.step, m.channel) for m in result.messages] == [
        (0, "hello", "sms"),
        (2, "guide", "email"),
        (5, "check-in", "sms"),
    ]
    guide = result.messages[1]
    assert (guide.to, guide.subject) == ("ana.ruiz@example.com", "Your guide")
    assert guide.body == "Hello Ana Ruiz, here it is."
    assert guide.at == datetime(2025, 1, 8, 9, 0, tzinfo=UTC)  # from the fixed Monday start
    assert result.status == "completed"


def test_a_lead_who_converts_the_next_day_receives_only_the_welcome(welcome: Path):
    result = dry_run(str(welcome), {"name": "Ana Ruiz"}, events=["+1d convert"])
    assert [m.step for m in result.messages] == ["hello"]
    assert result.status == "converted" and result.lead["status"] == "Converted"


def test_until_stops_the_clock_before_the_last_message(welcome: Path):
    result = dry_run(welcome, {"name": "Ana Ruiz"}, until="3d")
    assert [m.day for m in result.messages] == [0, 2]


def test_a_sequence_named_in_a_project_runs_in_the_projects_time_zone(project: Path):
    (project / "nurture.toml").write_text('sequences_dir = "sequences"\ntimezone = "Asia/Tokyo"\n')
    (project / "sequences" / "welcome.yaml").write_text(WELCOME, encoding="utf-8")
    start = datetime(2025, 1, 6, 20, 0, tzinfo=UTC)  # already Tuesday in Tokyo
    result = dry_run("Welcome", {"name": "Ana Ruiz"}, project=project, start=start)
    assert result.run.zone == "Asia/Tokyo"
    assert [m.day for m in result.messages] == [0, 2, 5]


def test_a_sequence_that_is_not_there_is_named_with_a_hint(project: Path, welcome: Path):
    (project / "sequences" / "welcome.yaml").write_text(WELCOME, encoding="utf-8")
    with pytest.raises(NotFound, match="no sequence 'Welcom'.*Welcome"):
        dry_run("Welcom", {"name": "Ana"}, project=project)


def test_an_invalid_sequence_file_raises_every_problem_with_its_line(tmp_path: Path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: Broken\nsteps:\n  - name: Hello\n    action_type: send_pigeon\n")
    with pytest.raises(SpecError) as raised:
        dry_run(broken, {"name": "Ana"})
    assert "broken.yaml:4" in str(raised.value)


def test_a_store_with_the_project_applied_runs_the_engine_into_a_memory_channel(welcome: Path):
    start = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
    channel = MemoryChannel()
    with project_store(welcome) as store:
        with store.session() as session:
            assert session.exec(select(Sequence.name)).all() == ["Welcome"]
        enroll_many(store, 3, start)
        run_due(store, start, worker="test", channels={"sms": channel})
    assert channel.bodies() == ["Hi Lead, welcome!"] * 3


def test_each_project_store_is_fresh(welcome: Path):
    project = load_project(welcome)
    with project_store(project) as first:
        enroll_many(first, 2, datetime(2025, 1, 6, tzinfo=UTC))
    with project_store(project) as second, second.session() as session:
        assert session.exec(select(Sequence.name)).all() == ["Welcome"]
        assert session.exec(select(Lead)).all() == []


def test_the_python_tests_of_the_testing_page_pass_in_a_new_project(tmp_path: Path, run):
    assert run("init", cwd=tmp_path).exit_code == 0
    namespace: dict = {}
    exec(compile(python_example(), str(TESTING_PAGE), "exec"), namespace)
    tests = [value for name, value in namespace.items() if name.startswith("test_")]
    assert len(tests) == 2
    for test in tests:
        test()


def python_example() -> str:
    text = TESTING_PAGE.read_text(encoding="utf-8")
    section = text.split("## Testing your sequences from Python", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)
