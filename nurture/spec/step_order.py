"""Steps moved, added and removed as blocks of lines of the file: nothing else in it changes.

A step's block runs from the comment lines just above its `- ` (those no deeper than the dash:
they describe it) to the next step's block. The comment lines after the last step (above the
next top-level key) stay where they are. A list of steps that is not a plain block sequence
(flow style, `-` alone on its line) is changed through ruamel, comments kept where they can be.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from io import StringIO
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from nurture.spec.edit import edit_text, mapping_indent, styled

STEPS = "steps"


@dataclass(frozen=True)
class Blocks:
    """The file's lines cut into what is before the steps, each step's block, and what follows."""

    head: list[str]
    steps: list[list[str]]
    tail: list[str]
    dash: int
    """The column of the steps' dashes."""
    camel: bool
    """Whether the steps' keys are the seed's camelCase (`actionType`)."""

    def text(self) -> str:
        return "".join(self.head + [line for block in self.steps for line in block] + self.tail)


def move_step(text: str, source: int, target: int) -> str:
    """The step at `source` moved to index `target` (0-based, as after the move)."""
    return _rearranged(text, lambda steps: steps.insert(target, steps.pop(source)))


def remove_step(text: str, index: int) -> str:
    """The step at `index` removed with its comments."""
    return _rearranged(text, lambda steps: steps.pop(index))


def insert_step(text: str, step: dict[str, Any], index: int | None = None) -> str:
    """`step` (plain data, canonical keys) inserted at `index` (None: last), spelled like its siblings."""
    blocks = _blocks(text)
    if blocks is None:
        at = index

        def change(doc: CommentedMap) -> None:
            doc[STEPS].insert(len(doc[STEPS]) if at is None else at, styled(None, step))

        return edit_text(text, change)
    at = len(blocks.steps) if index is None else index
    steps = blocks.steps[:at] + [_step_lines(text, step, blocks)] + blocks.steps[at:]
    return replace(blocks, steps=steps).text()


def _rearranged(text: str, change: Callable[[list[Any]], object]) -> str:
    blocks = _blocks(text)
    if blocks is None:

        def edit(doc: CommentedMap) -> None:
            change(doc[STEPS])

        return edit_text(text, edit)
    steps = list(blocks.steps)
    change(steps)
    return replace(blocks, steps=steps).text()


def _load(text: str) -> CommentedMap | None:
    try:
        doc = YAML().load(text.removeprefix("\ufeff"))
    except Exception:  # noqa: BLE001 (any YAML error: the caller validates and says what)
        return None
    return doc if isinstance(doc, CommentedMap) else None


def _blocks(text: str) -> Blocks | None:
    """The steps' blocks, or None when they are not a plain block sequence of mappings."""
    doc = _load(text)
    steps = doc.get(STEPS) if doc is not None else None
    if not isinstance(steps, CommentedSeq) or not steps or steps.fa.flow_style():
        return None
    lines = text.splitlines(keepends=True)
    starts, dash = [], None
    for index in range(len(steps)):
        line, column = steps.lc.item(index)
        prefix = lines[line][:column]
        if not isinstance(steps[index], CommentedMap) or prefix.strip() != "-":
            return None
        dash = prefix.index("-") if dash is None else dash
        starts.append(_lead(lines, line, dash))
    assert doc is not None and dash is not None
    end = _end(lines, doc, dash)
    bounds = [*starts, end]
    blocks = [lines[bounds[i] : bounds[i + 1]] for i in range(len(starts))]
    camel = any(re.search(r"[a-z][A-Z]", str(key)) for step in steps for key in step)
    return Blocks(lines[: starts[0]], blocks, lines[end:], dash, camel)


def _comment(line: str, dash: int) -> bool:
    stripped = line.lstrip(" ")
    return stripped.startswith("#") and len(line) - len(stripped) <= dash


def _lead(lines: list[str], line: int, dash: int) -> int:
    """The first line of the comments just above line `line` (blank lines above them excluded)."""
    start = line
    while start > 0 and (_comment(lines[start - 1], dash) or not lines[start - 1].strip()):
        start -= 1
    while start < line and not lines[start].strip():
        start += 1  # blank lines above the comments stay with the step before
    return start


def _end(lines: list[str], doc: CommentedMap, dash: int) -> int:
    """Where the last step's block ends: before the comments above the next top-level key."""
    keys = list(doc)
    after = keys[keys.index(STEPS) + 1 :]
    end = doc.lc.key(after[0])[0] if after else len(lines)
    while end > 0 and (_comment(lines[end - 1], dash) or not lines[end - 1].strip()):
        end -= 1
    if end and not lines[end - 1].endswith("\n"):
        lines[end - 1] += "\n"  # the last line of the file, when it becomes a middle one
    return end


def _step_lines(text: str, step: dict[str, Any], blocks: Blocks) -> list[str]:
    """A new step's lines, indented like the others and keyed in their spelling."""
    yaml = YAML()
    yaml.width = 4096
    keys_at = _indent_of(blocks.steps[0], blocks.dash)
    yaml.indent(mapping=mapping_indent(text), sequence=keys_at, offset=0)
    out = StringIO()
    yaml.dump(CommentedSeq([styled(None, step, camel=blocks.camel)]), out)
    pad = " " * blocks.dash
    newline = "\r\n" if text.count("\r\n") else "\n"
    return [pad + line + newline for line in out.getvalue().splitlines()]


def _indent_of(block: list[str], dash: int) -> int:
    """How far a step's keys stand from its dash (`- name:` is 2)."""
    for line in block:
        stripped = line.lstrip(" ")
        if stripped.startswith("-") and len(line) - len(stripped) == dash:
            return len(line) - len(stripped[1:].lstrip(" ")) - dash
    return 2
