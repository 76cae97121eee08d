"""The template library: every template is valid, tested and offered by init and `sequences new`."""

import json
import re
from pathlib import Path

import pytest
import yaml

from nurture.project.library import templates
from nurture.spec.actions import ActionType
from nurture.spec.categories import CATEGORIES

NAMES = [template.name for template in templates()]
SCHEMA_COMMENT = "# yaml-language-server: $schema=../schema/sequence.schema.json\n"


@pytest.mark.parametrize("name", NAMES)
def test_a_project_from_a_template_validates_strictly_and_passes_its_tests(run, tmp_path, name):
    project = tmp_path / "coaching"
    assert run("init", str(project), "--template", name).exit_code == 0
    assert sorted(path.name for path in (project / "sequences").iterdir()) == [f"{name}.yaml"]
    validated = run("validate", "--strict", cwd=project)
    assert validated.exit_code == 0 and "warning" not in validated.output, validated.output
    tested = run("test", "--json")
    cases = json.loads(tested.stdout)
    assert tested.exit_code == 0 and len(cases) >= 2, tested.output
    assert all(case["passed"] for case in cases)


def test_the_library_has_a_template_per_category_and_the_three_coaching_classics():
    by_category = {template.category for template in templates()}
    assert by_category == set(CATEGORIES)
    assert {"webinar-follow-up", "consultation-no-show", "trial-to-paid"} <= set(NAMES)
    assert len(NAMES) >= 8


def test_the_templates_use_every_action_type_and_are_commented():
    used = {action for template in templates() for action in template.steps}
    assert used == {action.value for action in ActionType}
    for template in templates():
        assert template.text.startswith(SCHEMA_COMMENT + "#\n# " + template.title + ":")
        assert yaml.safe_load(template.text)["tests"], template.name


def test_every_template_in_one_project_still_validates_and_passes(run, tmp_path):
    project = tmp_path / "all"
    assert run("init", str(project), *[f"--template={name}" for name in NAMES]).exit_code == 0
    assert run("validate", cwd=project).exit_code == 0  # warnings only: funnels' coverage gaps
    tested = run("test", "--json")
    assert tested.exit_code == 0 and all(case["passed"] for case in json.loads(tested.stdout))


def test_sequences_templates_lists_the_library(run, project):
    listed = json.loads(run("sequences", "templates", "--json").stdout)
    assert [row["name"] for row in listed] == NAMES
    webinar = next(row for row in listed if row["name"] == "webinar-follow-up")
    assert webinar["title"] == "Webinar Follow-Up" and webinar["category"] == "follow_up"
    assert webinar["steps"] == 5 and "send_email" in webinar["actions"]
    table = run("sequences", "templates").stdout
    assert "consultation-no-show" in table and "objection_handling" in table


def test_sequences_new_from_a_template_writes_it_renamed_with_its_comments(run, project: Path):
    result = run("sequences", "new", "Spring Webinar", "--from", "webinar-follow-up")
    assert result.exit_code == 0, result.output
    written = (project / "sequences" / "spring-webinar.yaml").read_text()
    [template] = [t for t in templates() if t.name == "webinar-follow-up"]
    assert written == template.text.replace("name: Webinar Follow-Up\n", "name: Spring Webinar\n")
    assert "wrote" in result.stderr and "nurture plan" in result.stderr
    tested = run("test", "spring-webinar", "--json")
    assert tested.exit_code == 0 and all(case["passed"] for case in json.loads(tested.stdout))


def test_sequences_new_without_a_template_writes_a_blank_valid_sequence(run, project: Path):
    result = run("sequences", "new", "My Sequence", "--json")
    assert json.loads(result.stdout) == {
        "name": "My Sequence",
        "path": str(project / "sequences" / "my-sequence.yaml"),
        "template": None,
        "applied": False,
    }
    assert run("validate", "--strict").exit_code == 0
    spec = yaml.safe_load((project / "sequences" / "my-sequence.yaml").read_text())
    assert spec["name"] == "My Sequence" and spec["steps"][0]["action_type"] == "send_email"


def test_sequences_new_refuses_a_taken_name_and_an_unknown_template(run, project: Path):
    assert run("sequences", "new", "Trial", "--from", "trial-to-paid").exit_code == 0
    again = run("sequences", "new", "trial", "--from", "win-back")
    assert again.exit_code == 1 and "same slug 'trial'" in again.stderr
    unknown = run("sequences", "new", "Other", "--from", "webinar")
    assert unknown.exit_code == 1
    assert "no template 'webinar' (did you mean 'webinar-follow-up'?)" in unknown.stderr
    assert sorted(path.name for path in (project / "sequences").iterdir()) == ["trial.yaml"]


def test_init_with_an_unknown_template_writes_nothing(run, tmp_path: Path):
    result = run("init", str(tmp_path / "new"), "--template", "no-such-thing")
    assert result.exit_code == 1 and "no template 'no-such-thing'" in result.stderr
    assert not (tmp_path / "new").exists()


def test_the_guide_lists_every_template_with_its_description():
    guide = Path(__file__).parent.parent / "docs" / "guides" / "templates-and-builder.md"
    rows = re.findall(r"^\| `([a-z-]+)` \| (\w+) \| (.+) \|$", guide.read_text(), re.M)
    assert sorted(rows) == sorted((t.name, t.category, t.description) for t in templates())
