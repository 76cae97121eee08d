"""Where things are in a sequence file: the one place that maps a loc to a line and column."""

from dataclasses import dataclass, field
from typing import Any

from pydantic.alias_generators import to_camel, to_snake

Loc = tuple[str | int, ...]
"""A path into a sequence file's data: ('steps', 2, 'action_config', 'message')."""
Position = tuple[int, int]
"""(line, column), both from 1."""


@dataclass(frozen=True)
class Scalar:
    """Where a scalar value sits: first line and column, last line, block style (`|` or `>`)."""

    line: int
    column: int
    end_line: int
    block: bool


@dataclass
class Document:
    """A parsed sequence file: its data and where each key, item and scalar is."""

    data: dict[str, Any]
    positions: dict[Loc, Position]
    scalars: dict[Loc, Scalar] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)

    def resolve(self, loc: Loc) -> Loc:
        """The path in the file that a model loc names (aliases matched, union tags skipped)."""
        path: list[str | int] = []
        value: Any = self.data
        for part in loc:
            key = _matching_key(value, part)
            if key is not None:  # else a union tag or member label: nothing in the file
                path.append(key)
                value = value[key]
        return tuple(path)

    def position(self, loc: Loc) -> Position:
        """Line and column of `loc` (a model loc or a file path), or of its nearest known parent."""
        path = self.resolve(loc)
        while path not in self.positions:
            path = path[:-1]
        return self.positions[path]


def _matching_key(value: Any, part: str | int) -> str | int | None:
    if isinstance(value, list):
        return part if isinstance(part, int) and 0 <= part < len(value) else None
    if not isinstance(value, dict):
        return None
    spellings = (part, to_camel(part), to_snake(part)) if isinstance(part, str) else (str(part),)
    return next((key for key in spellings if key in value), None)
