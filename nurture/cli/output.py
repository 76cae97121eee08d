"""Where output goes: results to stdout, notes to stderr; `--json` prints the result as JSON."""

import json
from datetime import date, datetime, time
from typing import Any

from rich.console import Console, ConsoleDimensions
from rich.markup import escape

UNBOUNDED = 100_000
"""The width of a pipe or a file: a table gets its natural width, no value cut or wrapped."""


class _Console(Console):
    """A terminal's width on a terminal; on a pipe whole values (rich would assume 80 columns)."""

    @property
    def size(self) -> ConsoleDimensions:
        measured = super().size
        if self.is_terminal or self._width is not None:  # a terminal, or COLUMNS set on purpose
            return measured
        return ConsoleDimensions(UNBOUNDED, measured.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        self._width, self._height = new_size


# emoji=False: a `:100:` in `file.yaml:100:7` or a lead's name is text, not 💯.
out = _Console(highlight=False, soft_wrap=True, emoji=False)
err = _Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)


def print_json(data: Any) -> None:
    """Machine output: one JSON document on stdout."""
    print(json_text(data, indent=2))


def json_text(data: Any, indent: int | None = None) -> str:
    """JSON with times in ISO 8601 (`2026-12-01T09:00:00+00:00`, as the HTTP API writes them)."""
    return json.dumps(data, indent=indent, default=_plain, ensure_ascii=False)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)


def print_result(data: Any, *, json: bool, message: str) -> None:
    """What a command did: with --json the changed object on stdout, else a note on stderr."""
    if json:
        print_json(data)
    else:
        note(message)


def error(message: str) -> None:
    """`error: ...` on stderr; the message is printed literally (it may hold user text)."""
    err.print(f"[bold red]error:[/] {escape(message)}")


def warning(message: str) -> None:
    """`warning: ...` on stderr, printed literally."""
    err.print(f"[yellow]warning:[/] {escape(message)}")


def note(message: str) -> None:
    """A note for the person at the terminal, on stderr, printed literally (no markup)."""
    err.print(message, markup=False)


def plural(count: int, noun: str) -> str:
    """`1 step`, `2 steps`."""
    return f"{count} {noun}{'' if count == 1 else 's'}"
