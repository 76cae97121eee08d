"""One YAML document to plain data, with the line and column of every key and list item."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from nurture.spec.diagnostics import Diagnostic
from nurture.spec.positions import Document, Loc, Position, Scalar

MAX_BYTES = 1_000_000
MAX_DEPTH = 64
MAX_VALUES = 20_000  # counting aliases expanded: a "billion laughs" file stops here
MAX_PROBLEMS = 100

_TOO_LARGE = (
    f"file too large (over {MAX_BYTES // 1_000_000} MB); a sequence file is a few kilobytes"
)
_BINARY = "binary file (NUL byte); a sequence file is UTF-8 YAML text"
_TOO_DEEP = f"nesting too deep (more than {MAX_DEPTH} levels)"
_TOO_MANY = f"too many values (over {MAX_VALUES}, counting aliases expanded)"

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
        decoded = _decode(text, filename)
        if isinstance(decoded, Diagnostic):
            return Loaded(None, [decoded])
        text = decoded
    if len(text) > MAX_BYTES:
        return _failed(filename, (1, 1), _TOO_LARGE)
    if "\0" in text:
        return _failed(filename, _text_position(text, text.index("\0")), _BINARY)
    root = _compose(text, filename)
    if isinstance(root, Diagnostic):
        return Loaded(None, [root])
    problem = _top_level_problem(root)
    if problem:
        return _failed(filename, _mark(root) if root else (1, 1), problem)
    return _Builder(filename).document(root, text)


def _decode(raw: bytes, filename: str) -> str | Diagnostic:
    """The UTF-8 text of a file's bytes, or why it is not a sequence file."""
    if len(raw) > MAX_BYTES:
        return Diagnostic(filename, 1, 1, _TOO_LARGE)
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return Diagnostic(filename, 1, 1, "UTF-16 text; save the file as UTF-8")
    if b"\0" in raw:
        return Diagnostic(filename, *_byte_position(raw, raw.index(b"\0")), _BINARY)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        byte = raw[error.start]
        message = f"not UTF-8 text (byte 0x{byte:02x}); save the file as UTF-8"
        return Diagnostic(filename, *_byte_position(raw, error.start), message)


def _byte_position(raw: bytes, offset: int) -> Position:
    return raw.count(b"\n", 0, offset) + 1, offset - (raw.rfind(b"\n", 0, offset) + 1) + 1


def _text_position(text: str, offset: int) -> Position:
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _failed(filename: str, position: Position, message: str) -> Loaded:
    return Loaded(None, [Diagnostic(filename, *position, message)])


class _Limit(Exception):
    """The document is too deep or too big to go on composing it."""

    def __init__(self, mark: yaml.Mark, message: str) -> None:
        super().__init__(message)
        self.mark, self.message = mark, message


class _LimitedLoader(yaml.SafeLoader):
    """The pure-Python SafeLoader (exact marks), stopping early on deep or huge documents."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = self.nodes = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        self.depth += 1
        self.nodes += 1
        try:
            if self.depth > MAX_DEPTH:
                raise _Limit(self.peek_event().start_mark, _TOO_DEEP)
            if self.nodes > MAX_VALUES:
                raise _Limit(self.peek_event().start_mark, _TOO_MANY)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _compose(text: str, filename: str) -> Node | None | Diagnostic:
    """The YAML node tree, or the first syntax problem."""
    loader: _LimitedLoader | None = None
    try:
        loader = _LimitedLoader(text)
        return loader.get_single_node()
    except _Limit as limit:
        return Diagnostic(filename, *_mark_position(limit.mark), limit.message)
    except yaml.MarkedYAMLError as error:
        return Diagnostic(filename, *_error_position(error), _syntax_message(error))
    except yaml.reader.ReaderError as error:
        character = f"#x{error.character:04x}"
        message = f"unacceptable character {character}: control characters are not allowed"
        return Diagnostic(filename, *_text_position(text, error.position), message)
    except RecursionError:  # the limits above should come first; this is the backstop
        position = _mark_position(loader.get_mark()) if loader else (1, 1)
        return Diagnostic(filename, *position, _TOO_DEEP)
    finally:
        if loader is not None:
            loader.dispose()


def _error_position(error: yaml.MarkedYAMLError) -> Position:
    mark = error.problem_mark or error.context_mark
    return _mark_position(mark) if mark else (1, 1)


def _syntax_message(error: yaml.MarkedYAMLError) -> str:
    if error.problem == "but found another document":
        return "found a second YAML document (---); a sequence file holds exactly one"
    message = error.problem or error.context or "invalid YAML"
    if error.problem and error.context:
        started = error.context_mark and error.context_mark.line != error.problem_mark.line
        where = f" that starts at line {error.context_mark.line + 1}" if started else ""
        message = f"{message} ({error.context}{where})"
    return f"invalid YAML: {message}"


def _top_level_problem(root: Node | None) -> str | None:
    if root is None or (isinstance(root, ScalarNode) and root.tag == _TAG + "null"):
        return "empty file, expected a sequence mapping (name, steps, ...)"
    if isinstance(root, MappingNode):
        return None
    found = "a list" if isinstance(root, SequenceNode) else "a single value"
    return f"expected a mapping at the top, found {found}"


def _mark(node: Node) -> Position:
    return _mark_position(node.start_mark)


def _mark_position(mark: yaml.Mark) -> Position:
    return mark.line + 1, mark.column + 1


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
        self.positions[()] = _mark(root)
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
        where = self.positions.get(loc) or _mark(node)
        if self.values > MAX_VALUES or depth > MAX_DEPTH:
            # Only aliases get here (the composer stops plain documents): blame the top-level key.
            problem = _TOO_MANY if self.values > MAX_VALUES else _TOO_DEEP
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
            self.report(_mark(node), f"unsupported YAML tag {node.tag!r}")
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
                self.report(_mark(key_node), message, usable=True)
            first_line.setdefault(key, key_node.start_mark.line + 1)
            self.positions[loc + (key,)] = _mark(key_node)
            result[key] = self.build(value_node, loc + (key,), depth + 1)
        for merge in merges:
            self.merge(result, merge, loc, depth)
        return result

    def key(self, node: Node) -> str | None:
        if isinstance(node, ScalarNode):
            return node.value  # as written: `1:` and `no:` are the keys '1' and 'no'
        self.report(_mark(node), "a key must be plain text, not a mapping or a list")
        return None

    def merge(self, result: dict[str, Any], node: Node, loc: Loc, depth: int) -> None:
        """`<<: *defaults`: keys of the merged mappings that this mapping does not set itself."""
        sources = node.value if isinstance(node, SequenceNode) else [node]
        for source in sources:
            if not isinstance(source, MappingNode):
                self.report(_mark(source), "a merge key (<<) takes a mapping or a list of mappings")
                continue
            outer = self.positions, self.scalars
            self.positions, self.scalars = {}, {}
            try:
                merged = self.build(source, loc, depth + 1)
            finally:
                inner, (self.positions, self.scalars) = (self.positions, self.scalars), outer
            added = {key for key in merged or {} if key not in result}
            result.update({key: merged[key] for key in added})
            for found, into in zip(inner, outer, strict=True):
                into.update((path, at) for path, at in found.items() if path[len(loc)] in added)

    def sequence(self, node: SequenceNode, loc: Loc, depth: int) -> list[Any]:
        items = []
        for index, item in enumerate(node.value):
            self.positions[loc + (index,)] = _mark(item)
            items.append(self.build(item, loc + (index,), depth + 1))
        return items

    def scalar(self, node: ScalarNode, loc: Loc) -> Any:
        line, column = _mark(node)
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
