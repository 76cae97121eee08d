"""One YAML document to plain data, with the line and column of every key and list item."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from nurture.spec.compose import (
    BINARY,
    MAX_BYTES,
    MAX_DEPTH,
    MAX_VALUES,
    TOO_DEEP,
    TOO_LARGE,
    TOO_MANY,
    compose,
    decode,
    node_position,
    text_position,
    top_level_problem,
)
from nurture.spec.diagnostics import Diagnostic
from nurture.spec.positions import Document, Loc, Position, Scalar

MAX_PROBLEMS = 100

_TAG = "tag:yaml.org,2002:"
_MERGE, _MAP, _SEQ = _TAG + "merge", _TAG + "map", _TAG + "seq"
_SCALARS: dict[str, Callable[[SafeConstructor, ScalarNode], Any]] = {
    _TAG + kind: SafeConstructor.yaml_constructors[_TAG + kind]
    for kind in ("str", "int", "float", "bool", "null")
}
# Dates stay text: `name: 2025-03-01` is a name, and pydantic parses the fields that are dates.
_AS_TEXT = {_TAG + "timestamp"}


@dataclass
class Loaded:
    """What loading gave: the document (None when unusable) and the problems found."""

    document: Document | None
    diagnostics: list[Diagnostic]


def load_yaml(text: str | bytes, filename: str) -> Loaded:
    """Parse one YAML document into a Document; every problem becomes a Diagnostic."""
    if isinstance(text, bytes):
        decoded = decode(text, filename)
        if isinstance(decoded, Diagnostic):
            return Loaded(None, [decoded])
        text = decoded
    if len(text) > MAX_BYTES:
        return _failed(filename, (1, 1), TOO_LARGE)
    if "\0" in text:
        return _failed(filename, text_position(text, text.index("\0")), BINARY)
    root = compose(text, filename)
    if isinstance(root, Diagnostic):
        return Loaded(None, [root])
    problem = top_level_problem(root)
    if problem:
        return _failed(filename, node_position(root) if root else (1, 1), problem)
    assert isinstance(root, MappingNode), "top_level_problem refuses anything else"
    return _Builder(filename).document(root, text)


def _failed(filename: str, position: Position, message: str) -> Loaded:
    return Loaded(None, [Diagnostic(filename, *position, message)])


class _Stop(Exception):
    """Building cannot go on (too deep, too many values, a value inside itself)."""


class _Builder:
    """Builds plain data from nodes, recording positions; aliases are expanded with limits."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.positions: dict[Loc, Position] = {}
        self.scalars: dict[Loc, Scalar] = {}
        self.diagnostics: list[Diagnostic] = []
        self.usable = True
        self.values = 0
        self.building: set[int] = set()  # ids of the nodes being built: an alias to one recurses
        self.constructor = SafeConstructor()

    def document(self, root: MappingNode, text: str) -> Loaded:
        self.positions[()] = node_position(root)
        try:
            data = self.build(root, (), 0)
        except _Stop:
            return Loaded(None, self.diagnostics)
        document = Document(data, self.positions, self.scalars, text.splitlines())
        return Loaded(document if self.usable else None, self.diagnostics)

    def report(self, position: Position, message: str, *, usable: bool = False) -> None:
        self.diagnostics.append(Diagnostic(self.filename, *position, message))
        self.usable = self.usable and usable
        if len(self.diagnostics) >= MAX_PROBLEMS:
            self.stop(position, f"too many problems ({MAX_PROBLEMS}); stopping here")

    def stop(self, position: Position, message: str) -> None:
        self.diagnostics.append(Diagnostic(self.filename, *position, message))
        raise _Stop

    def build(self, node: Node, loc: Loc, depth: int) -> Any:
        self.values += 1
        where = self.positions.get(loc) or node_position(node)
        if self.values > MAX_VALUES or depth > MAX_DEPTH:
            # Only aliases get here (the composer stops plain documents): blame the top-level key.
            problem = TOO_MANY if self.values > MAX_VALUES else TOO_DEEP
            self.stop(self.positions.get(loc[:1], where), problem)
        if id(node) in self.building:
            self.stop(where, "recursive alias: this value contains itself")
        if isinstance(node, ScalarNode):
            return self.scalar(node, loc)
        self.building.add(id(node))
        try:
            if isinstance(node, MappingNode) and node.tag == _MAP:
                return self.mapping(node, loc, depth)
            if isinstance(node, SequenceNode) and node.tag == _SEQ:
                return self.sequence(node, loc, depth)
            self.report(node_position(node), f"unsupported YAML tag {node.tag!r}")
            return None
        finally:
            self.building.discard(id(node))

    def mapping(self, node: MappingNode, loc: Loc, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        merges = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merges.append(value_node)
                continue
            key = self.key(key_node)
            if key is None:
                continue
            if key in first_line:  # PyYAML would keep the last silently
                message = f"duplicate key {key!r} (first at line {first_line[key]})"
                self.report(node_position(key_node), message, usable=True)
            first_line.setdefault(key, key_node.start_mark.line + 1)
            self.positions[loc + (key,)] = node_position(key_node)
            result[key] = self.build(value_node, loc + (key,), depth + 1)
        for merge in merges:
            self.merge(result, merge, loc, depth)
        return result

    def key(self, node: Node) -> str | None:
        if isinstance(node, ScalarNode):
            return node.value  # as written: `1:` and `no:` are the keys '1' and 'no'
        self.report(node_position(node), "a key must be plain text, not a mapping or a list")
        return None

    def merge(self, result: dict[str, Any], node: Node, loc: Loc, depth: int) -> None:
        """`<<: *defaults`: keys of the merged mappings that this mapping does not set itself."""
        sources = node.value if isinstance(node, SequenceNode) else [node]
        for source in sources:
            if not isinstance(source, MappingNode):
                self.report(
                    node_position(source), "a merge key (<<) takes a mapping or a list of mappings"
                )
                continue
            outer_positions, outer_scalars = self.positions, self.scalars
            self.positions, self.scalars = {}, {}
            try:
                merged = self.build(source, loc, depth + 1)
            finally:
                positions, scalars = self.positions, self.scalars
                self.positions, self.scalars = outer_positions, outer_scalars
            added = {key for key in merged or {} if key not in result}
            result.update({key: merged[key] for key in added})
            self.positions.update((p, at) for p, at in positions.items() if p[len(loc)] in added)
            self.scalars.update((p, at) for p, at in scalars.items() if p[len(loc)] in added)

    def sequence(self, node: SequenceNode, loc: Loc, depth: int) -> list[Any]:
        items = []
        for index, item in enumerate(node.value):
            self.positions[loc + (index,)] = node_position(item)
            items.append(self.build(item, loc + (index,), depth + 1))
        return items

    def scalar(self, node: ScalarNode, loc: Loc) -> Any:
        line, column = node_position(node)
        self.scalars[loc] = Scalar(line, column, node.end_mark.line + 1, node.style in ("|", ">"))
        tag, text = node.tag, node.value
        if tag in (_TAG + "int", _TAG + "float") and ":" in text:
            return text  # YAML 1.1 reads 18:00 as 1080 (base 60); it is a time of day
        if tag == _TAG + "bool" and text.lower() not in ("true", "false"):
            return text  # yes/no/on/off stay text: `holidays: NO` is Norway
        if tag in _AS_TEXT:
            return text
        construct = _SCALARS.get(tag)
        if construct is None:
            self.report((line, column), f"unsupported YAML tag {tag!r}")
            return None
        try:
            return construct(self.constructor, node)
        except (ValueError, TypeError, OverflowError, yaml.YAMLError) as error:
            self.report((line, column), f"invalid {tag.removeprefix(_TAG)} {text[:40]!r}: {error}")
            return None
