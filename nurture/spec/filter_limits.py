"""The checks a filter or a string method runs on its arguments before it makes anything.

Each receives the arguments as the filter or method does (the value first) and raises
TemplateLimit when the result would be over MAX_SIZE: `center(1000000000)`, a join whose
separator is repeated a hundred thousand times, `replace('', 'x' * 100000)`.
"""

from collections.abc import Callable
from typing import Any

from nurture.spec.limits import (
    MAX_SIZE,
    TemplateLimit,
    at_most,
    check_brace_format,
    check_percent_format,
    size,
)

Check = Callable[..., None]


def _width(position: int, keyword: str, what: str) -> Check:
    """A check that the count or width at this position (after the value) is within MAX_SIZE."""

    def check(value: Any, *args: Any, **kwargs: Any) -> None:
        number = args[position] if len(args) > position else kwargs.get(keyword)
        at_most(number, MAX_SIZE, what)

    return check


def _grows(what: str, estimate: int) -> None:
    if estimate > MAX_SIZE:
        raise TemplateLimit(f"{what} over the limit of {MAX_SIZE:,} characters")


def _join(value: Any, separator: Any = "", *args: Any, **kwargs: Any) -> None:
    separator = kwargs.get("d", separator)
    count = len(value) if hasattr(value, "__len__") else 0
    _grows("a join that makes", size(value) + size(separator) * max(count - 1, 0))


def _replace(value: Any, old: Any = "", new: Any = "", *args: Any, **kwargs: Any) -> None:
    text, old, new = str(value), kwargs.get("old", old), kwargs.get("new", new)
    if not isinstance(old, str) or not isinstance(new, str):
        return
    places = len(text) + 1 if old == "" else text.count(old)
    _grows("a replace that makes", len(text) + places * len(new))


def _indent(value: Any, width: Any = 4, *args: Any, **kwargs: Any) -> None:
    width = kwargs.get("width", width)
    at_most(width, MAX_SIZE, "an indent of")
    prefix = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
    _grows("an indent that makes", size(value) + prefix * (str(value).count("\n") + 1))


def _format(value: Any, *args: Any, **kwargs: Any) -> None:
    check_percent_format(value)


def _sum(value: Any, attribute: Any = None, start: Any = 0, **kwargs: Any) -> None:
    if not isinstance(kwargs.get("start", start), (int, float)):
        raise TemplateLimit("filter 'sum' adds numbers only (adding lists takes time squared)")


def _tojson(value: Any, indent: Any = None, **kwargs: Any) -> None:
    at_most(kwargs.get("indent", indent), 100, "a JSON indent of")


def _text_width(value: str, width: Any = 0, *args: Any, **kwargs: Any) -> None:
    at_most(width, MAX_SIZE, "a width of")


def _expand_tabs(value: str, tabsize: Any = 8, **kwargs: Any) -> None:
    at_most(kwargs.get("tabsize", tabsize), 100, "a tab size of")


def _brace_format(value: str, *args: Any, **kwargs: Any) -> None:
    check_brace_format(value)


FILTER_CHECKS: dict[str, Check] = {
    "center": _width(0, "width", "a width of"),
    "batch": _width(0, "linecount", "a batch of"),
    "slice": _width(0, "slices", "a slice count of"),
    "join": _join,
    "replace": _replace,
    "indent": _indent,
    "format": _format,
    "sum": _sum,
    "tojson": _tojson,
}

METHOD_CHECKS: dict[str, Check] = {
    "center": _text_width,
    "ljust": _text_width,
    "rjust": _text_width,
    "zfill": _text_width,
    "expandtabs": _expand_tabs,
    "join": lambda separator, items=(), **kwargs: _join(items, separator),
    "replace": _replace,
    "format": _brace_format,
    "format_map": _brace_format,
}
