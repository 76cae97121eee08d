"""Message templates: the one Jinja2 environment, and the checks `nurture validate` runs on them."""

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

from jinja2 import TemplateSyntaxError, meta, nodes

from nurture.spec.actions import TEMPLATE_FIELDS
from nurture.spec.diagnostics import closest, did_you_mean
from nurture.spec.sandbox import BoundedEnvironment
from nurture.spec.template_cost import cost_problems

LEAD_KEYS = frozenset(
    {
        "name",
        "first_name",
        "last_name",
        "email",
        "phone",
        "source",
        "status",
        "temperature",
        "score",
        "tags",
        "timezone",
        "funnel",
        "fields",
        "created_at",
    }
)
COACH_KEYS = frozenset({"name", "business", "email", "phone", "website", "booking_url"})
NAMED_KEYS = frozenset({"name", "slug", "id"})
TOP_LEVEL = frozenset(
    {"lead", "coach", "funnel", "sequence", "step", "unsubscribe_url", "now", "booking_link"}
    | {"appointment"}
)
Loc = tuple[str | int, ...]


@cache
def template_environment() -> BoundedEnvironment:
    """The shared sandbox: lead data is data, a missing variable is an error, a render is bounded."""
    return BoundedEnvironment(autoescape=False)


@cache
def html_environment() -> BoundedEnvironment:
    """The same sandbox for HTML bodies, escaping what it inserts (a lead named `<b>` stays text)."""
    return BoundedEnvironment(autoescape=True)


@dataclass(frozen=True)
class TemplateProblem:
    """A problem at a line of a template; `needle` is the text to point at, when known."""

    line_in_template: int
    message: str
    needle: str | None = None


def check_template(source: str, coach_keys: Collection[str] | None = None) -> list[TemplateProblem]:
    """Syntax errors, unknown filters and variables, and what a render would refuse to compute."""
    try:
        return _check(source, frozenset(coach_keys or COACH_KEYS))
    except RecursionError:  # Jinja's parser and analysis recurse: `{{ ((((...` must not crash us
        return [TemplateProblem(1, "template nested too deeply")]


def _check(source: str, coach: frozenset[str]) -> list[TemplateProblem]:
    if not any(mark in source for mark in ("{{", "{%", "{#")):
        return []  # text without a tag is printed as it is: nothing to check
    environment = template_environment()
    try:
        tree = environment.parse(source)
    except TemplateSyntaxError as error:
        return [_syntax_problem(source, error)]
    except ValueError:  # Python refuses to read an integer of over 4,300 digits
        return [TemplateProblem(1, "template syntax error: a number too long to read", None)]
    free, compile_error = _analyse(tree)
    problems = _unknown_filters(tree) + _unknown_variables(tree, free, coach)
    problems += [TemplateProblem(*problem) for problem in cost_problems(tree)]
    if not problems and compile_error:  # what parsing does not catch (a block defined twice...)
        problems.append(_syntax_problem(source, compile_error))
    return problems


def _syntax_problem(source: str, error: TemplateSyntaxError) -> TemplateProblem:
    lines = source.splitlines() or [""]
    line = min(max(error.lineno or 1, 1), len(lines))
    text = lines[line - 1]
    openers = [text.find(mark) for mark in ("{{", "{%", "{#") if mark in text]
    needle = text[min(openers) :][:2] if openers else None
    return TemplateProblem(line, f"template syntax error: {error.message}", needle)


def _unknown_filters(tree: nodes.Template) -> list[TemplateProblem]:
    environment = template_environment()
    problems = []
    for kind, node_type, known in (
        ("filter", nodes.Filter, environment.filters),
        ("test", nodes.Test, environment.tests),
    ):
        for node in tree.find_all(node_type):
            if node.name not in known:
                message = f"unknown {kind} {node.name!r}{did_you_mean(node.name, known)}"
                problems.append(TemplateProblem(node.lineno, message, node.name))
    return problems


def _unknown_variables(
    tree: nodes.Template, free: set[str], coach_keys: frozenset[str]
) -> list[TemplateProblem]:
    problems = [_unknown_name(tree, name) for name in sorted(free - TOP_LEVEL)]
    allowed = {"lead": LEAD_KEYS, "coach": coach_keys, "funnel": NAMED_KEYS}
    allowed |= {"sequence": NAMED_KEYS, "step": NAMED_KEYS}
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        root, key = _root_and_key(node)
        if root in free and root in allowed and key is not None and key not in allowed[root]:
            hint = _suggestion(root, key, allowed[root])
            message = f"unknown template variable '{root}.{key}'{hint}"
            problems.append(TemplateProblem(node.lineno, message, f"{root}.{key}"))
    return problems


def _suggestion(root: str, key: str, allowed: Collection[str]) -> str:
    # Compare the key alone: a shared `coach.` prefix would make every coach key look close.
    close = closest(key, allowed)
    if close:
        return f" (did you mean '{root}.{close}'?)"
    return " (coach keys are set under [coach] in nurture.toml)" if root == "coach" else ""


def _analyse(tree: nodes.Template) -> tuple[set[str], TemplateSyntaxError | None]:
    """The names the template reads but does not bind itself ({% set %}, loops, macros), and the
    error compiling it would raise: one pass of Jinja's code generator serves both."""
    try:
        return meta.find_undeclared_variables(tree), None
    except TemplateSyntaxError as error:  # e.g. an unknown filter stops the analysis: approximate
        names = list(tree.find_all(nodes.Name))
        bound = {name.name for name in names if name.ctx in ("store", "param")}
        return {name.name for name in names if name.ctx == "load"} - bound, error


def _unknown_name(tree: nodes.Template, name: str) -> TemplateProblem:
    line = next((n.lineno for n in tree.find_all(nodes.Name) if n.name == name), 1)
    candidates = sorted(TOP_LEVEL) + [f"lead.{key}" for key in sorted(LEAD_KEYS)]
    message = f"unknown template variable {name!r}{did_you_mean(name, candidates)}"
    return TemplateProblem(line, message, name)


def _root_and_key(node: nodes.Expr) -> tuple[str | None, str | None]:
    """`lead.first_name` and `lead['first_name']` give ('lead', 'first_name')."""
    if not isinstance(node, nodes.Getattr | nodes.Getitem) or not isinstance(node.node, nodes.Name):
        return None, None
    if isinstance(node, nodes.Getattr):
        return node.node.name, node.attr
    key = node.arg.value if isinstance(node.arg, nodes.Const) else None
    return node.node.name, key if isinstance(key, str) else None


def template_fields(data: Any) -> Iterator[tuple[Loc, str]]:
    """(path, text) of every template in a sequence file's raw data, as the file spells keys."""
    steps = data.get("steps") if isinstance(data, dict) else None
    for index, step in enumerate(steps if isinstance(steps, list) else []):
        if not isinstance(step, dict):
            continue
        yield from _own_templates(("steps", index), step)
        variants = step.get("variants")
        for number, variant in enumerate(variants if isinstance(variants, list) else []):
            if isinstance(variant, dict):  # every variant's texts, each where the file has it
                yield from _own_templates(("steps", index, "variants", number), variant)


def _own_templates(loc: Loc, owner: dict[str, Any]) -> Iterator[tuple[Loc, str]]:
    """The templates of a step's (or a variant's) action config."""
    key = "action_config" if "action_config" in owner else "actionConfig"
    config = owner.get(key)
    if isinstance(config, dict):
        yield from _config_templates(loc + (key,), config)


def _config_templates(loc: Loc, config: dict[str, Any]) -> Iterator[tuple[Loc, str]]:
    for name, value in config.items():
        if name in TEMPLATE_FIELDS and isinstance(value, str):
            yield loc + (name,), value
    template = config.get("template")
    variables = template.get("variables") if isinstance(template, dict) else None
    if isinstance(variables, dict):
        for name, value in variables.items():
            if isinstance(value, str):
                yield loc + ("template", "variables", name), value
