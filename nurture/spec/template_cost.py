"""What `nurture validate` can tell about a template's cost before it ever renders.

The constant parts of a template (`9**(9**9)`, `range(1000000)`, `center(1000000000)`, a
text repeated `* 1000000000` times) are folded here under the sandbox's own checks, each
refused before it is computed, so a check costs microseconds whatever the template asks.
What depends on the lead is bounded at render time by the sandbox instead.
"""

import operator
from collections.abc import Iterator
from typing import Any

from jinja2 import nodes

from nurture.spec.filter_limits import FILTER_CHECKS, METHOD_CHECKS
from nurture.spec.limits import (
    MAX_SIZE,
    TemplateLimit,
    check_percent_format,
    check_power,
    check_product,
    check_range,
    sized,
)

Problem = tuple[int, str, str | None]
"""(line in the template, message, the text to point at)."""

_UNKNOWN = object()
_OPERATORS = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "%": operator.mod,
    "**": operator.pow,
}
_PRECHECKS = {
    "**": check_power,
    "*": check_product,
    "%": lambda left, _: check_percent_format(left),
}
_WIDTH_ONLY = frozenset({"center", "batch", "slice", "indent", "ljust", "rjust", "zfill"})
_TEXT_FILTERS = frozenset({"string", "upper", "lower", "title", "capitalize", "trim", "join"})
_NUMBERS = frozenset({"score"})  # the lead's one number: `lead.score * 1000000` is fine


def cost_problems(tree: nodes.Template) -> list[Problem]:
    """Every constant part of the template that a render would refuse, where it is."""
    folder = _Folder()
    folder.fold(tree)
    return folder.problems


class _Folder:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def fold(self, node: nodes.Node) -> Any:
        """The node's value when it is constant, else _UNKNOWN; a refusal becomes a problem."""
        try:
            return self._fold(node)
        except TemplateLimit as error:
            self.problems.append((node.lineno, f"template too costly: {error}", _needle(node)))
            return _UNKNOWN
        except (ArithmeticError, LookupError, TypeError, ValueError):
            return _UNKNOWN  # `range('ab')` fails at render, with Python's own message

    def _fold(self, node: nodes.Node) -> Any:
        if isinstance(node, nodes.Const):
            return node.value
        if isinstance(node, nodes.BinExpr):
            return self._binary(node)
        if isinstance(node, (nodes.Neg, nodes.Pos)):
            value = self.fold(node.node)
            return -value if isinstance(node, nodes.Neg) and _number(value) else _UNKNOWN
        if isinstance(node, (nodes.List, nodes.Tuple)):
            items = [self.fold(item) for item in node.items]
            folded = tuple(items) if isinstance(node, nodes.Tuple) else items
            return _UNKNOWN if _UNKNOWN in items else sized(folded)
        if isinstance(node, nodes.Call):
            return self._call(node)
        if isinstance(node, nodes.Filter):
            return self._filter(node)
        for child in node.iter_child_nodes():
            self.fold(child)
        return _UNKNOWN

    def _binary(self, node: nodes.BinExpr) -> Any:
        left, right = self.fold(node.left), self.fold(node.right)
        if node.operator == "*":
            for number, other in ((left, node.right), (right, node.left)):
                if _number(number) and _textual(other) and number > MAX_SIZE:
                    raise TemplateLimit(
                        f"repeating a text or a list {number:,} times is over the limit"
                        f" of {MAX_SIZE:,} characters and items"
                    )
        if left is _UNKNOWN or right is _UNKNOWN:
            return _UNKNOWN
        check = _PRECHECKS.get(node.operator)
        if check is not None:
            check(left, right)
        return sized(_OPERATORS[node.operator](left, right))

    def _call(self, node: nodes.Call) -> Any:
        args = [self.fold(arg) for arg in node.args]
        kwargs = {keyword.key: self.fold(keyword.value) for keyword in node.kwargs}
        known = _UNKNOWN not in args and _UNKNOWN not in kwargs.values()
        if isinstance(node.node, nodes.Name) and node.node.name == "range" and known:
            check_range(*args)
        elif isinstance(node.node, nodes.Getattr) and node.node.attr in METHOD_CHECKS:
            self._method(node.node, args, kwargs, known)
        else:
            self.fold(node.node)
        return _UNKNOWN

    def _method(self, node: nodes.Getattr, args: list, kwargs: dict, known: bool) -> None:
        owner = self.fold(node.node)
        if known and isinstance(owner, str):
            METHOD_CHECKS[node.attr](owner, *args, **kwargs)
        elif known and node.attr in _WIDTH_ONLY:
            METHOD_CHECKS[node.attr]("", *args, **kwargs)

    def _filter(self, node: nodes.Filter) -> Any:
        value = self.fold(node.node) if node.node is not None else _UNKNOWN
        args = [self.fold(arg) for arg in node.args]
        # jinja types a filter's kwargs as Pairs (Expr keys); its parser makes Keywords (str keys)
        keywords: list[nodes.Keyword] = node.kwargs  # type: ignore[assignment]
        kwargs = {keyword.key: self.fold(keyword.value) for keyword in keywords}
        check = FILTER_CHECKS.get(node.name)
        if check is None or _UNKNOWN in args or _UNKNOWN in kwargs.values():
            return _UNKNOWN
        if value is not _UNKNOWN:
            check(value, *args, **kwargs)
        elif node.name in _WIDTH_ONLY:
            check("", *args, **kwargs)
        return _UNKNOWN


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _textual(node: nodes.Node) -> bool:
    """Whether a node not known before render surely holds a text or a list (`lead.name`)."""
    if isinstance(node, (nodes.Concat, nodes.List, nodes.Tuple)):
        return True
    if isinstance(node, nodes.Filter):
        return node.name in _TEXT_FILTERS
    if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name):
        return (
            node.node.name in ("lead", "funnel", "sequence", "step") and node.attr not in _NUMBERS
        )
    return False


def _needle(node: nodes.Node) -> str | None:
    """The text validate points at: the operator, the filter, the function or the method."""
    if isinstance(node, nodes.BinExpr):
        return node.operator
    if isinstance(node, nodes.Filter):
        return node.name
    if isinstance(node, nodes.Call):
        return next(_names(node.node), None)
    return None


def _names(node: nodes.Node) -> Iterator[str]:
    if isinstance(node, nodes.Name):
        yield node.name
    elif isinstance(node, nodes.Getattr):
        yield node.attr
