"""Message templates: one sandboxed environment, and checks that catch mistakes before a send."""

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from builders import SEED_WARM_LEAD, sequence, step, write
from jinja2 import UndefinedError
from jinja2.sandbox import SecurityError
from serving import serving, token

from nurture.channels import PermanentFailure
from nurture.engine.actions import render
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


# Templates with bounded cost (issue 11): what was seen freezing validate, the API and the daemon.

SEEN = {
    "{{ 9**(9**9) }}": "9 ** 387,420,489 has over the limit of 1,000 digits",
    "{{ 10**100000 }}": "10 ** 100,000 has over the limit of 1,000 digits",
    "{{ lead.name * 1000000000 }}": (
        "repeating a text or a list 1,000,000,000 times is over the limit"
        " of 100,000 characters and items"
    ),
}
LEAD = {"name": "Ana Ruiz", "first_name": "Ana", "score": 40, "tags": ["vip"]}


def quickly(call, *args, seconds: float = 2.0):
    """The call's answer, asserting it took under `seconds` of this process's CPU (generous)."""
    started = time.process_time()
    answer = call(*args)
    assert time.process_time() - started < seconds
    return answer


@pytest.mark.parametrize("source", SEEN)
def test_a_costly_template_is_a_problem_found_in_milliseconds(source):
    [problem] = quickly(check_template, source)
    assert problem.message == f"template too costly: {SEEN[source]}"
    assert problem.needle in ("**", "*")


@pytest.mark.parametrize(
    ("source", "fields", "limit"),
    [
        ("{{ lead.fields.n ** lead.fields.n }}", {"n": 10**6}, "over the limit of 1,000 digits"),
        (
            "{{ lead.fields.note * lead.fields.n }}",
            {"note": "hi", "n": 10**9},
            "100,000 characters",
        ),
        ("{{ [lead.name] * lead.fields.n }}", {"n": 10**9}, "100,000 characters and items"),
        ("{{ lead.name|center(lead.fields.n) }}", {"n": 10**9}, "over the limit of 100,000"),
        ("{{ lead.name.ljust(lead.fields.n) }}", {"n": 10**9}, "over the limit of 100,000"),
        ("{{ '%0*d' % (lead.fields.n, 1) }}", {"n": 10**9}, "'%*d') is not allowed"),
        ("{{ range(lead.fields.n)|join }}", {"n": 10**6}, "over the limit of 10,000 items"),
        ("{{ lead.name|replace('', lead.fields.note) }}", {"note": "x" * 50_000}, "100,000"),
        ("{{ lead.fields.note }}{{ lead.fields.note }}", {"note": "x" * 60_000}, "100,000 char"),
        (
            "{% set s = namespace(t=lead.name) %}"
            "{% for _ in range(lead.fields.n) %}{% set s.t = s.t ~ s.t %}{% endfor %}{{ s.t }}",
            {"n": 64},
            "a text over the limit of 100,000 characters and items",
        ),
        (
            "{% for a in range(lead.fields.n) %}{% for b in range(lead.fields.n) %}"
            "{% endfor %}{% endfor %}",
            {"n": 10_000},
            "over the limit of 1,000,000 units of work",
        ),
        (
            "{% macro twice(n) %}{% if n %}{{ twice(n - 1) }}{{ twice(n - 1) }}{% endif %}"
            "{% endmacro %}{{ twice(lead.fields.n) }}",
            {"n": 40},
            "over the limit of 1,000,000 units of work",
        ),
    ],
    ids=[
        "power",
        "repeat",
        "list-repeat",
        "center",
        "ljust",
        "star-width",
        "range",
        "replace",
        "output",
        "doubling",
        "nested-loops",
        "macro-tree",
    ],
)
def test_a_template_over_a_limit_fails_at_render_naming_the_limit(source, fields, limit):
    """What depends on the lead's data only shows at render: a permanent failure, at once."""
    assert check_template(source) == []
    with pytest.raises(PermanentFailure, match="^template error: ") as failure:
        quickly(render, source, {"lead": LEAD | {"fields": fields}})
    assert limit in str(failure.value)


def test_templates_within_the_limits_render_as_before():
    source = (
        "{{ 2 ** 10 }} {{ lead.first_name * 3 }} {{ '%05.1f' % 3.14159 }} {{ '{:>6}'.format('x') }}"
        " {{ range(3)|map('string')|join('-') }} {{ lead.tags|join(', ')|upper }}"
        " {% for n in range(1000) %}{% endfor %}{{ ('x' * 99_000)|length }}"
    )
    assert check_template(source) == []
    assert render(source, {"lead": LEAD}) == "1024 AnaAnaAna 003.1      x 0-1-2 VIP 99000"


def test_a_costly_sequence_posted_to_the_api_is_a_422_at_once(run_store, project, store_url):
    with serving(project, store_url, sequences="read-write") as api:
        api.headers.update(token(run_store, "admin", "write"))
        body = yaml.safe_load(SEED_WARM_LEAD)
        for source, limit in SEEN.items():
            body["steps"][0]["actionConfig"]["message"] = f"Hi {source}"
            answer = quickly(lambda: api.post("/api/nurturing-sequences", json=body))
            assert answer.status_code == 422
            assert answer.json() == {
                "message": f"template too costly: {limit}",
                "field": "steps.0.actionConfig.message",
            }
        assert api.get("/api/nurturing-sequences").status_code == 200  # the server still answers


BATCH_LEADS = [("Ana Ruiz", "website"), ("Ben Ode", "ads"), ("Cy Lam", "ads")]


def test_a_step_whose_template_cannot_render_fails_alone_and_the_batch_is_sent(run_store, project):
    """One lead's data breaks a limit at render: its step fails, the batch's others go out."""
    texts = step("Hello")
    texts["action_config"]["message"] = (
        "Hi {{ lead.first_name }}{{ lead.fields.note * 1000000000 }}"
    )
    write(project, "costly.yaml", sequence("Costly", texts, funnels=["Website"]))
    write(project, "plain.yaml", sequence("Plain", step("Hello"), funnels=["Ads"]))
    assert run_store("validate").exit_code == 0  # its text depends on the lead: it passes
    assert run_store("apply", "--yes").exit_code == 0
    for number, (name, funnel) in enumerate(BATCH_LEADS):
        phone = f"+44 7400 12345{number}"
        added = run_store(
            "leads", "add", "-f", funnel, "--name", name, "--phone", phone, "--field", "note=hi"
        )
        assert added.exit_code == 0, added.output
    later = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    ran = quickly(
        lambda: run_store("run", "--once", "--channel", "console", "--now", later), seconds=30
    )
    assert ran.exit_code == 0 and "Traceback" not in ran.output
    assert (
        "Hi Ben, Hello" in ran.stdout and "Hi Cy, Hello" in ran.stdout and "Ana" not in ran.stdout
    )
    shown = json.loads(run_store("leads", "show", "1", "--json").stdout)
    [execution] = shown["executions"]
    assert execution["status"] == "failed"
    assert execution["error"] == (
        "step 'hello': template error: repeating a text of 2 characters 1,000,000,000 times"
        " is over the limit of 100,000 characters and items"
    )
