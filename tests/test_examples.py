"""The example sequences in sequences/: realistic, valid, tested, and what `nurture init` writes."""

import shutil
from importlib import resources
from pathlib import Path

import pytest
import yaml

from nurture.spec.actions import ActionType
from nurture.spec.models import SequenceSpec
from nurture.spec.names import slugify

SEQUENCES = Path(__file__).resolve().parent.parent / "sequences"
EXAMPLES = sorted(SEQUENCES.glob("*.yaml"))
SCHEMA_COMMENT = "# yaml-language-server: $schema=../schema/sequence.schema.json\n"
INIT_EXAMPLES = {"warm-lead-welcome.yaml", "consultation-follow-up.yaml"}
CATEGORIES = {"warm_lead", "cold_lead", "objection_handling", "reactivation", "follow_up"}


def _spec(path: Path) -> SequenceSpec:
    return SequenceSpec.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_each_example_is_a_valid_sequence_with_tests(path: Path):
    spec = _spec(path)
    assert spec.tests, f"{path.name} has no `tests:` cases"
    assert path.name == f"{slugify(spec.name)}.yaml"
    assert path.read_text(encoding="utf-8").startswith(SCHEMA_COMMENT)


def test_the_examples_cover_a_coachs_sequences():
    categories = {_spec(path).category for path in EXAMPLES}
    assert categories >= CATEGORIES


def test_the_examples_use_every_action_type():
    used = {step.action_type for path in EXAMPLES for step in _spec(path).steps}
    assert used == set(ActionType)


def test_the_warm_lead_welcome_is_written_with_the_seeds_camel_case_keys():
    document = yaml.safe_load((SEQUENCES / "warm-lead-welcome.yaml").read_text(encoding="utf-8"))
    assert {"triggerConditions", "stopOnConversion", "sendWindow"} <= document.keys()
    steps = document["steps"]
    assert all({"actionType", "actionConfig", "delayDays"} <= step.keys() for step in steps)
    assert _spec(SEQUENCES / "warm-lead-welcome.yaml").trigger_conditions.lead_score.max == 70


@pytest.mark.parametrize("name", sorted(INIT_EXAMPLES))
def test_nurture_init_ships_the_same_files(name: str):
    packaged = resources.files("nurture.project.examples").joinpath(name).read_bytes()
    assert packaged == (SEQUENCES / name).read_bytes(), (
        f"cp sequences/{name} nurture/project/examples/"
    )


def test_nurture_init_ships_only_those_examples():
    packaged = {entry.name for entry in resources.files("nurture.project.examples").iterdir()}
    assert {name for name in packaged if name.endswith(".yaml")} == INIT_EXAMPLES


def test_the_examples_pass_nurture_validate_without_a_lint_warning(run, project: Path):
    for path in EXAMPLES:
        shutil.copy(path, project / "sequences" / path.name)
    result = run("validate", "--strict")
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output
