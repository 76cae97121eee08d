"""`nurture schema`: the JSON Schema editors use to complete and check sequence files."""

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from builders import SEED_WARM_LEAD
from pydantic import ValidationError

from nurture.spec.models import SequenceSpec
from nurture.spec.schema import sequence_json_schema, sequence_json_schema_text

REPO = Path(__file__).resolve().parent.parent
COMMITTED = REPO / "schema" / "sequence.schema.json"
EXAMPLES = sorted((REPO / "sequences").glob("*.yaml"))
VALIDATOR = jsonschema.Draft202012Validator(sequence_json_schema())
SMS = {
    "name": "Hello",
    "action_type": "send_sms",
    "action_config": {"message": "Hi {{ lead.name }}"},
}


def test_nurture_schema_prints_the_schema_as_json(run):
    result = run("schema")
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith("}\n")
    printed = json.loads(result.stdout)
    assert printed == sequence_json_schema()
    assert printed["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert printed["title"] and printed["$id"]


def test_nurture_schema_output_writes_the_file(run, tmp_path: Path):
    target = tmp_path / "editor" / "sequence.schema.json"
    result = run("schema", "--output", str(target))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert target.read_text(encoding="utf-8") == sequence_json_schema_text()


def test_the_output_is_stable():
    assert sequence_json_schema_text() == sequence_json_schema_text()


def test_the_committed_schema_is_up_to_date():
    committed = COMMITTED.read_text(encoding="utf-8") if COMMITTED.is_file() else ""
    assert committed == sequence_json_schema_text(), (
        "schema/sequence.schema.json is stale: run `make schema` and commit the result"
    )


def test_the_schema_is_a_valid_draft_2020_12_schema():
    jsonschema.Draft202012Validator.check_schema(sequence_json_schema())


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_every_example_sequence_validates_against_the_schema(path: Path):
    VALIDATOR.validate(yaml.safe_load(path.read_text(encoding="utf-8")))


def test_the_seed_systems_camel_case_sequence_validates():
    VALIDATOR.validate(yaml.safe_load(SEED_WARM_LEAD))


def test_an_unknown_key_is_rejected():
    errors = list(VALIDATOR.iter_errors({"name": "X", "steps": [SMS], "triggers": {}}))
    assert any("triggers" in error.message for error in errors)


def test_camel_case_keys_are_described_as_aliases():
    properties = sequence_json_schema()["properties"]
    assert properties["stopOnConversion"]["description"] == "alias of stop_on_conversion"
    assert properties["stopOnConversion"]["type"] == properties["stop_on_conversion"]["type"]


def test_each_action_type_offers_its_own_config():
    """An editor completes action_config from the step whose action_type const matches."""
    schema = sequence_json_schema()
    branches = schema["properties"]["steps"]["items"]["oneOf"]
    steps = [schema["$defs"][branch["$ref"].split("/")[-1]]["properties"] for branch in branches]
    consts = {step["action_type"]["const"]: step["action_config"]["$ref"] for step in steps}
    assert consts["send_email"] == "#/$defs/EmailConfig"
    assert len(consts) == 9


def _sequence(**fields: Any) -> dict[str, Any]:
    return {"name": "Schema Check", "steps": [SMS], **fields}


def _step(**fields: Any) -> dict[str, Any]:
    return _sequence(steps=[{**SMS, **fields}])


CAMEL_STEP = {
    "name": "Hi",
    "actionType": "send_sms",
    "actionConfig": {"message": "Hi"},
    "delayDays": 1,
}
WHATSAPP = {"template": {"contentSid": "HX" + "a" * 32}}
AGREEMENT = {
    "a duration as text": (_sequence(retry_delay="1d 4h"), True),
    "a duration in minutes": (_sequence(retry_delay=90), True),
    "a duration in words": (_sequence(retry_delay="soon"), False),
    "a negative duration": (_sequence(retry_delay=-5), False),
    "a clock time": (_sequence(send_window={"start": "07:30", "end": "21:00"}), True),
    "a clock time with am": (_sequence(send_window={"start": "9am"}), False),
    "days as one string": (_sequence(send_window={"days": "mon, wed fri"}), True),
    "one lead source": (_sequence(trigger_conditions={"lead_source": "Web Form"}), True),
    "no lead sources": (_sequence(trigger_conditions={"lead_source": []}), False),
    "camelCase keys": (_sequence(maxRetries=2, retryDelay="5m"), True),
    "camelCase step keys": (_sequence(steps=[CAMEL_STEP]), True),
    "an unknown key": (_sequence(retries=2), False),
    "an unknown step key": (_step(delay_dayz=1), False),
    "another action's config": (_step(action_config={"subject": "Hi", "body": "x"}), False),
    "an unknown action type": (_step(action_type="send_fax"), False),
    "no action type": (_sequence(steps=[{"name": "Oops", "action_config": {}}]), False),
    "a wait without config": (_sequence(steps=[{"name": "Pause", "action_type": "wait"}]), True),
    "a task due in a day": (
        _step(action_type="create_task", action_config={"title": "Call", "due_in": "1d"}),
        True,
    ),
    "a template": (_step(action_type="send_whatsapp_message", action_config=WHATSAPP), True),
}


@pytest.mark.parametrize(("document", "valid"), AGREEMENT.values(), ids=AGREEMENT.keys())
def test_the_schema_and_the_models_agree(document: dict[str, Any], valid: bool):
    assert VALIDATOR.is_valid(document) is valid
    assert _model_accepts(document) is valid


def _model_accepts(document: dict[str, Any]) -> bool:
    try:
        SequenceSpec.model_validate(document)
    except ValidationError:
        return False
    return True
