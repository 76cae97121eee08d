"""YAML text to a node tree, refusing what is not a sequence file: too large, binary, not UTF-8,
too deep or too big (aliases counted), or not valid YAML; each refusal is a Diagnostic."""

from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import ScalarEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from nurture.spec.diagnostics import Diagnostic
from nurture.spec.positions import Position

MAX_BYTES = 1_000_000
MAX_DEPTH = 64
MAX_VALUES = 20_000  # counting aliases expanded: a "billion laughs" file stops here

TOO_LARGE = f"file too large (over {MAX_BYTES // 1_000_000} MB); a sequence file is a few kilobytes"
BINARY = "binary file (NUL byte); a sequence file is UTF-8 YAML text"
TOO_DEEP = f"nesting too deep (more than {MAX_DEPTH} levels)"
TOO_MANY = f"too many values (over {MAX_VALUES}, counting aliases expanded)"

NULL_TAG = "tag:yaml.org,2002:null"
try:
    from yaml._yaml import CParser  # libyaml, where PyYAML was built with it

    _FAST = True
except ImportError:  # pragma: no cover - a PyYAML without libyaml: the pure-Python loader alone
    CParser, _FAST = object, False  # type: ignore[assignment,misc]


def decode(raw: bytes, filename: str) -> str | Diagnostic:
    """The UTF-8 text of a file's bytes, or why it is not a sequence file."""
    if len(raw) > MAX_BYTES:
        return Diagnostic(filename, 1, 1, TOO_LARGE)
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return Diagnostic(filename, 1, 1, "UTF-16 text; save the file as UTF-8")
    if b"\0" in raw:
        return Diagnostic(filename, *_byte_position(raw, raw.index(b"\0")), BINARY)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        byte = raw[error.start]
        message = f"not UTF-8 text (byte 0x{byte:02x}); save the file as UTF-8"
        return Diagnostic(filename, *_byte_position(raw, error.start), message)


def _byte_position(raw: bytes, offset: int) -> Position:
    return raw.count(b"\n", 0, offset) + 1, offset - (raw.rfind(b"\n", 0, offset) + 1) + 1


def text_position(text: str, offset: int) -> Position:
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


class _Limit(Exception):
    """The document is too deep or too big to go on composing it."""

    def __init__(self, mark: yaml.Mark, message: str) -> None:
        super().__init__(message)
        self.mark, self.message = mark, message


class _Limits:
    """Composition that stops early on deep or huge documents (a mixin before the parser)."""

    depth = nodes = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self.depth += 1
        self.nodes += 1
        try:
            if self.depth > MAX_DEPTH:
                raise _Limit(self.peek_event().start_mark, TOO_DEEP)  # type: ignore[attr-defined]
            if self.nodes > MAX_VALUES:
                raise _Limit(self.peek_event().start_mark, TOO_MANY)  # type: ignore[attr-defined]
            return super().compose_node(parent, index)  # type: ignore[misc]
        finally:
            self.depth -= 1


class _LimitedLoader(_Limits, yaml.SafeLoader):
    """The pure-Python loader: its error messages are the ones users see."""


class _Inexact(Exception):
    """libyaml would mark this node elsewhere than PyYAML does: read the file with PyYAML."""


class _FastLoader(_Limits, Composer, CParser, SafeConstructor, Resolver):
    """libyaml's parser (20x faster) under Python's composer, which stops at the limits above.
    A file with an error, past a limit or with an empty plain value (libyaml marks it where the
    next token starts, PyYAML where the last one ended) is read again by _LimitedLoader, whose
    messages and marks users see. libyaml reads a few corner cases PyYAML refuses (a tab
    after `>`)."""

    def __init__(self, stream: str) -> None:
        CParser.__init__(self, stream)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)

    def compose_scalar_node(self, anchor: Any) -> ScalarNode:
        event = self.peek_event()
        if isinstance(event, ScalarEvent) and event.value == "" and event.style == "":
            raise _Inexact
        return super().compose_scalar_node(anchor)


def compose(text: str, filename: str) -> Node | None | Diagnostic:
    """The YAML node tree, or the first syntax problem."""
    if _FAST and "\ufeff" not in text:  # libyaml drops a BOM wherever it is; PyYAML reads it
        fast = _FastLoader(text)
        try:
            return fast.get_single_node()
        except Exception:  # noqa: BLE001 - an error, a limit or _Inexact: PyYAML's word below
            pass  # (it stops at the same limits, or first at a problem it reads ahead of them)
        finally:
            fast.dispose()
    return compose_exactly(text, filename)


def compose_exactly(text: str, filename: str) -> Node | None | Diagnostic:
    loader: _LimitedLoader | None = None
    try:
        loader = _LimitedLoader(text)
        return loader.get_single_node()
    except _Limit as limit:
        return Diagnostic(filename, *mark_position(limit.mark), limit.message)
    except yaml.MarkedYAMLError as error:
        return Diagnostic(filename, *_error_position(error), _syntax_message(error))
    except yaml.reader.ReaderError as error:
        character = f"#x{error.character:04x}"
        message = f"unacceptable character {character}: control characters are not allowed"
        return Diagnostic(filename, *text_position(text, error.position), message)
    except RecursionError:  # the limits above should come first; this is the backstop
        position = mark_position(loader.get_mark()) if loader else (1, 1)
        return Diagnostic(filename, *position, TOO_DEEP)
    finally:
        if loader is not None:
            loader.dispose()


def _error_position(error: yaml.MarkedYAMLError) -> Position:
    mark = error.problem_mark or error.context_mark
    return mark_position(mark) if mark else (1, 1)


def _syntax_message(error: yaml.MarkedYAMLError) -> str:
    if error.problem == "but found another document":
        return "found a second YAML document (---); a sequence file holds exactly one"
    message = error.problem or error.context or "invalid YAML"
    if error.problem and error.context:
        context, problem = error.context_mark, error.problem_mark
        started = context is not None and problem is not None and context.line != problem.line
        where = f" that starts at line {context.line + 1}" if context and started else ""
        message = f"{message} ({error.context}{where})"
    return f"invalid YAML: {message}"


def top_level_problem(root: Node | None) -> str | None:
    if root is None or (isinstance(root, ScalarNode) and root.tag == NULL_TAG):
        return "empty file, expected a sequence mapping (name, steps, ...)"
    if isinstance(root, MappingNode):
        return None
    found = "a list" if isinstance(root, SequenceNode) else "a single value"
    return f"expected a mapping at the top, found {found}"


def node_position(node: Node) -> Position:
    return mark_position(node.start_mark)


def mark_position(mark: yaml.Mark) -> Position:
    return mark.line + 1, mark.column + 1
