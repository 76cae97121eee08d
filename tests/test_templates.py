"""Message templates: one sandboxed environment, and checks that catch mistakes before a send."""

import pytest
from jinja2 import UndefinedError
from jinja2.sandbox import SecurityError

from nurture.spec.templates import (
    TemplateProblem,
    check_template,
    template_environment,
    template_fields,
)


@pytest.mark.parametrize(
    "source",
    [
        "Hi {{ lead.first_name }}! I'm {{ coach.name }} from {{ coach.business }}.",
        "{{ lead.fields.goal | default('fitness') }} {{ lead.fields.any.depth.at_all }}",
        "{{ coach.website | default(coach.booking_url) }} {{ unsubscribe_url }}",
        "{% set first = lead.name.split()[0] %}Hi {{ first | title }}",
        "{% for tag in lead.tags %}{{ loop.index }}: {{ tag }}{% endfor %}",
        "{% macro hello(who) %}Hi {{ who }}{% endmacro %}{{ hello(lead['first_name']) }}",
        "{{ funnel.name }} {{ sequence.slug }} {{ step.id }} {{ now.strftime('%A') }}",
        "No template at all, just text with a { brace }.",
    ],
)
def test_good_templates_have_no_problems(source):
    assert check_template(source) == []


def test_an_unknown_lead_attribute_suggests_the_close_one():
    assert check_template("Hi {{ lead.frist_name }}") == [
        TemplateProblem(
            1,
            "unknown template variable 'lead.frist_name' (did you mean 'lead.first_name'?)",
            "lead.frist_name",
        ),
    ]


def test_a_bare_field_name_suggests_the_lead_one():
    [problem] = check_template("line one\nHi {{ first_name }}")
    assert problem == TemplateProblem(
        2, "unknown template variable 'first_name' (did you mean 'lead.first_name'?)", "first_name"
    )


def test_subscripts_are_checked_like_attributes():
    [problem] = check_template("{{ lead['emial'] }}")
    assert problem.message == "unknown template variable 'lead.emial' (did you mean 'lead.email'?)"


def test_coach_keys_are_the_projects():
    assert check_template("{{ coach.calendly }}", coach_keys={"name", "calendly"}) == []
    [problem] = check_template("{{ coach.calendly }}")
    assert problem.message == (
        "unknown template variable 'coach.calendly'"
        " (coach keys are set under [coach] in nurture.toml)"
    )


def test_funnel_sequence_and_step_have_names():
    [problem] = check_template("{{ step.nam }}")
    assert problem.message == "unknown template variable 'step.nam' (did you mean 'step.name'?)"


def test_a_syntax_error_gives_its_line_in_the_template():
    assert check_template("Hello\n\nbye {{ lead.name }\n") == [
        TemplateProblem(3, "template syntax error: unexpected '}'", "{{"),
    ]


def test_an_unknown_filter_or_test_suggests_the_close_one():
    source = "{{ lead.name | titel }}{% if lead.tags is defind %}{% endif %}"
    assert [problem.message for problem in check_template(source)] == [
        "unknown filter 'titel' (did you mean 'title'?)",
        "unknown test 'defind' (did you mean 'defined'?)",
    ]


@pytest.mark.parametrize(
    "source",
    [
        "{{ " + "(" * 5_000 + "x" + ")" * 5_000 + " }}",
        "{{ " + "[" * 5_000 + "]" * 5_000 + " }}",
        "{% if x %}" * 3_000 + "{% endif %}" * 3_000,
        "{{ lead.fields" + ".a" * 5_000 + " }}",
        "{{ lead.name" + " | e" * 5_000 + " }}",
    ],
    ids=["parens", "lists", "ifs", "attributes", "filters"],
)
def test_deep_nesting_is_a_problem_not_a_crash(source):
    assert check_template(source) == [TemplateProblem(1, "template nested too deeply")]


def test_the_environment_is_shared_strict_and_sandboxed():
    environment = template_environment()
    assert template_environment() is environment
    lead = {"name": "Ana", "tags": ["vip"]}
    assert environment.from_string("Hi {{ lead.name }}").render(lead=lead) == "Hi Ana"
    with pytest.raises(UndefinedError):
        environment.from_string("{{ lead.first_name }}").render(lead=lead)
    with pytest.raises(SecurityError):
        environment.from_string("{{ lead.tags.append('hacked') }}").render(lead=lead)
    # Messages are text, not HTML: nothing is escaped.
    assert environment.from_string("{{ x }}").render(x="<b>") == "<b>"


def test_template_fields_are_the_action_configs_templates():
    data = {
        "description": "{{ not_a_template }}",
        "steps": [
            {
                "name": "a",
                "actionConfig": {"message": "Hi", "template": {"variables": {"1": "{{ x }}"}}},
            },
            {"name": "b", "action_config": {"subject": "S", "body": "B", "reply_to": "x@y.z"}},
            {"name": "c", "description": "{{ not_a_template }}", "action_config": {"tags": ["t"]}},
            "not a step",
        ],
    }
    assert list(template_fields(data)) == [
        (("steps", 0, "actionConfig", "message"), "Hi"),
        (("steps", 0, "actionConfig", "template", "variables", "1"), "{{ x }}"),
        (("steps", 1, "action_config", "subject"), "S"),
        (("steps", 1, "action_config", "body"), "B"),
    ]
