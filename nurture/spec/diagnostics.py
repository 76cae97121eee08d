"""Diagnostics: `file:line:column: message`, and pydantic's errors turned into them."""

import difflib
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from types import UnionType
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from pydantic.alias_generators import to_camel, to_snake
from pydantic_core import ErrorDetails

from nurture.spec.keys import key_homes, keys_at, union_tags
from nurture.spec.positions import Document, Loc

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Diagnostic:
    file: str
    line: int
    column: int
    message: str
    severity: Severity = "error"
    path: Loc = field(default=(), compare=False)
    """The key or item it is about, as the file spells the path (`('steps', 0, 'actionType')`);
    empty when it is about no key (YAML syntax). The builder shows a message beside its field."""

    def __str__(self) -> str:
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{self.file}:{self.line}:{self.column}: {prefix}{self.message}"

    def as_dict(self) -> dict[str, str | int]:
        """The diagnostic as JSON-ready data (for `--json`)."""
        return {key: value for key, value in asdict(self).items() if key != "path"}


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    """Whether any diagnostic is an error (warnings alone leave a file valid)."""
    return any(d.severity == "error" for d in diagnostics)


def closest(
    word: str, candidates: Iterable[str], cutoff: float = 0.6, *, by_word: bool = False
) -> str | None:
    """The candidate closest to `word` (difflib's ratio at least `cutoff`), or None; `by_word`:
    else the name one of whose words is close (`webinr` finds `Webinar Follow-Up`)."""
    candidates = list(candidates)
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=cutoff)
    if close or not by_word:
        return close[0] if close else None
    words = {part: name for name in candidates for part in _words(name)}
    close = difflib.get_close_matches(word.lower(), list(words), n=1, cutoff=cutoff)
    return words[close[0]] if close else None


def _words(name: str) -> list[str]:
    """A name in lower case, then each of its words (`Warm Lead`: warm lead, warm, lead)."""
    return [name.lower(), *(part for part in re.split(r"[^a-z0-9]+", name.lower()) if part)]


def did_you_mean(word: str, candidates: Iterable[str], *, by_word: bool = False) -> str:
    """` (did you mean 'x'?)` when a candidate is close to `word`, else nothing; `by_word` for
    names of several words, which a user shortens to one."""
    close = closest(word, candidates, by_word=by_word)
    return f" (did you mean {close!r}?)" if close else ""


_KINDS: tuple[tuple[type | UnionType, str], ...] = (
    (type(None), "nothing"),
    (bool, "true/false"),
    (int | float, "a number"),
    (str, "text"),
)
_KINDS += ((dict, "a mapping"), (list, "a list"))


def kind_of(value: Any) -> str:
    """What a YAML value is, in a user's words."""
    return next((name for kind, name in _KINDS if isinstance(value, kind)), type(value).__name__)


def validation_diagnostics(
    error: ValidationError, document: Document, filename: str, root: type[BaseModel]
) -> list[Diagnostic]:
    """One diagnostic per distinct problem in `error`, placed where the file says it."""
    seen: dict[tuple[int, int, str], Diagnostic] = {}
    explainer = _Explainer(document, root)
    for details in _merge_union_members(error.errors(include_url=False)):
        loc, message = explainer.explain(details)
        line, column = document.position(loc)
        found = Diagnostic(filename, line, column, message, path=explainer.path(loc))
        seen.setdefault((line, column, message), found)
    return list(seen.values())


def data_problems(
    errors: Iterable[ErrorDetails], data: Any, root: type[BaseModel]
) -> list[tuple[Loc, str]]:
    """`validate`'s messages for data without a file (an HTTP body), at paths as `data` spells them.

    One (path, message) per distinct problem: `(('steps', 0, 'actionType'), "unknown action...")`.
    """
    explainer = _Explainer(Document(data, {}), root)
    # Without lines to sort by, a misspelt key comes before the missing field it causes.
    merged = sorted(_merge_union_members(list(errors)), key=lambda d: d["type"] == "missing")
    problems = (explainer.explain(details) for details in merged)
    return list(dict.fromkeys((explainer.path(loc), message) for loc, message in problems))


def _merge_union_members(errors: list[ErrorDetails]) -> list[ErrorDetails]:
    """A value that fits no member of `str | int | ...` gives one error, not one per member."""
    merged: dict[tuple[Any, ...], ErrorDetails] = {}
    for details in errors:
        loc = tuple(details["loc"])
        key: tuple[Any, ...] = (len(merged),)
        if details["type"].endswith("_type") and loc and _is_union_label(loc[-1]):
            key = ("union", *loc[:-1])
            msg = "expected text, a number, true/false or a list of those"
            details = {**details, "loc": loc[:-1], "type": "union_type", "msg": msg}
        merged.setdefault(key, details)
    return list(merged.values())


def _is_union_label(part: str | int | None) -> bool:
    return isinstance(part, str) and (part in ("str", "int", "float", "bool") or "[" in part)


class _Explainer:
    """Turns one pydantic error into (where, message), in the words and spelling of the file."""

    def __init__(self, document: Document, root: type[BaseModel]) -> None:
        self.document, self.root = document, root

    def explain(self, details: ErrorDetails) -> tuple[Loc, str]:
        loc, kind = tuple(details["loc"]), details["type"]
        ctx = details.get("ctx") or {}
        if kind == "located":  # raised by a model validator, ctx['loc'] below that model
            loc += tuple(ctx["loc"])
            return loc, f"{self.field(loc)}: {details['msg']}"
        if kind == "missing":  # a file places it at the parent, where the key is absent
            return loc, f"missing required field {self.spelled(loc)!r}"
        if kind == "extra_forbidden":
            return loc, self.unknown_key(loc)
        if kind in ("union_tag_invalid", "union_tag_not_found"):
            return loc + ("action_type",), _action_type_problem(details)
        return loc, f"{self.field(loc)}: {error_message(details)}"

    def field(self, loc: Loc) -> str:
        """The field an error is about, as the file spells it: `leadScore`, `leadSource[1]`."""
        path = self.document.resolve(loc)
        names = [part for part in path if isinstance(part, str)]
        if not names:
            return next((str(p) for p in reversed(loc) if isinstance(p, str)), "sequence")
        last = max(i for i, part in enumerate(path) if isinstance(part, str))
        return names[-1] + "".join(f"[{index}]" for index in path[last + 1 :])

    def path(self, loc: Loc) -> Loc:
        """`loc` as the data spells it; a key it lacks (a missing field) spelled like its siblings."""
        path, last = self.document.resolve(loc), loc[-1] if loc else None
        absent = isinstance(last, str) and len(path) == len(self.document.resolve(loc[:-1]))
        if absent and last not in union_tags(self.root) and not _is_union_label(last):
            return (*path, self.spelled(loc))
        return path

    def spelled(self, loc: Loc) -> str:
        """A missing field's name in the style of its siblings (camelCase when they are)."""
        name = to_snake(str(loc[-1]))
        parent = self.value_at(loc[:-1])
        camel = isinstance(parent, dict) and any(re.search(r"[a-z][A-Z]", str(k)) for k in parent)
        return to_camel(name) if camel else name

    def value_at(self, loc: Loc) -> Any:
        value: Any = self.document.data  # a mapping, then whatever each key holds
        for part in self.document.resolve(loc):
            value = value[part]
        return value

    def unknown_key(self, loc: Loc) -> str:
        key, keys = str(loc[-1]), keys_at(self.root, loc[:-1])
        parent = self.value_at(loc[:-1])
        given = parent if isinstance(parent, dict) else {}
        twins = (k for k in keys if k != key and to_snake(k) == to_snake(key) and k in given)
        twin = next(twins, None)
        if twin is not None:
            return f"{key!r} and {twin!r} are the same field; keep one"
        return f"unknown key {key!r}{self.hint(key, keys, loc)}"

    def hint(self, key: str, keys: set[str], loc: Loc) -> str:
        """A close key here; else a close key elsewhere and where it goes; else the keys here."""
        close = did_you_mean(key, sorted(keys))
        if close:
            return close
        tags = union_tags(self.root)
        here = ".".join(to_snake(p) for p in loc[:-1] if isinstance(p, str) and p not in tags)
        homes = {k: home for k, home in key_homes(self.root).items() if home not in ("", here)}
        elsewhere = closest(key, homes, cutoff=0.75)
        if elsewhere == key:
            return f" here ({key!r} goes under {homes[key]})"
        if elsewhere:
            return f" (did you mean {elsewhere!r}? it goes under {homes[elsewhere]})"
        tag = next((p for p in loc if isinstance(p, str) and p in tags), None)
        owner = f" {tag}" if tag else ""
        snake = sorted(k for k in keys if k == to_snake(k))
        return f" (a{owner} {self.field(loc[:-1])} takes: {', '.join(snake)})" if snake else ""


def error_message(details: ErrorDetails) -> str:
    """pydantic's message for one error, said plainly (sequence files and settings)."""
    kind, message, found = details["type"], details["msg"], details["input"]
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"expected a mapping (key: value), found {kind_of(found)}"
    if kind == "list_type":
        return f"expected a list, found {kind_of(found)}"
    if kind == "literal_error":
        expected = re.findall(r"'([^']*)'", (details.get("ctx") or {}).get("expected", ""))
        hint = did_you_mean(str(found), expected) or f" (one of: {', '.join(expected)})"
        return f"unknown value {found!r}{hint}" if expected else message
    message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind != "value_error" and isinstance(found, str | int | float) and len(repr(found)) < 60:
        message = f"{message} (found {found!r})"
    return message


def _action_type_problem(details: ErrorDetails) -> str:
    ctx = details.get("ctx") or {}
    if details["type"] == "union_tag_invalid":
        expected = re.findall(r"'([^']*)'", ctx.get("expected_tags", ""))
        tag = str(ctx.get("tag"))
        hint = did_you_mean(tag, expected) or f" (one of: {', '.join(expected)})"
        return f"unknown action type {tag!r}{hint}"
    step = details["input"]
    if not isinstance(step, dict):
        shape = "a mapping with name, action_type, action_config"
        return f"expected a step ({shape}), found {kind_of(step)}"
    given = step.get("action_type", step.get("actionType"))
    if given is not None:
        return f"action_type must be text naming an action type, found {kind_of(given)}"
    return "missing action_type"
