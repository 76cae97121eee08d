"""WhatsApp's 24-hour rule as `nurture validate` sees it (the run-time side: test_twilio.py)."""

from datetime import UTC, datetime, timedelta

import pytest

from nurture.channels import PermanentFailure
from nurture.rules.whatsapp import choose

FREE_TEXT = """\
name: Chat
category: custom
steps:
  - name: Hello
    action_type: send_whatsapp_message
    action_config:
      message: Hi {{ lead.first_name }}
"""
WITH_TEMPLATE = FREE_TEXT + "      template: {content_sid: HX" + "0" * 32 + "}\n"


def test_validate_warns_on_free_text_without_a_template_and_strict_fails(project, run):
    (project / "sequences" / "chat.yaml").write_text(FREE_TEXT)
    result = run("validate")
    assert result.exit_code == 0
    assert result.stdout.startswith(
        "sequences/chat.yaml:7:7: warning: free-text WhatsApp step without a template fallback"
    )
    assert "✓ 1 sequence valid (1 warning)" in result.output
    assert run("validate", "--strict").exit_code == 1


def test_a_template_fallback_silences_the_warning(project, run):
    (project / "sequences" / "chat.yaml").write_text(WITH_TEMPLATE)
    result = run("validate", "--strict")
    assert result.exit_code == 0 and "warning" not in result.output


def test_lint_ignore_silences_the_whatsapp_rule(project, run):
    (project / "sequences" / "chat.yaml").write_text(FREE_TEXT)
    with (project / "nurture.toml").open("a") as toml:
        toml.write('lint_ignore = ["whatsapp-window"]\n')
    result = run("validate", "--strict")
    assert result.exit_code == 0 and "warning" not in result.output


NOW = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
TEMPLATE = {"content_sid": "HX" + "0" * 32, "variables": {}}


@pytest.mark.parametrize(
    ("wrote", "chosen"),
    [(timedelta(hours=23, minutes=59), ("hi", None)),
     (timedelta(hours=24), ("", TEMPLATE)),  # the free text does not go: no body
     (None, ("", TEMPLATE))],
)  # fmt: skip
def test_free_text_only_inside_the_window(wrote, chosen):
    assert choose("hi", TEMPLATE, NOW - wrote if wrote else None, NOW) == chosen


def test_no_template_outside_the_window_is_a_permanent_failure_saying_why():
    with pytest.raises(PermanentFailure, match="the lead never wrote"):
        choose("hi", None, None, NOW)
