"""Where output goes: data to stdout, messages to stderr; `--json` prints data only."""

import json
from datetime import date, datetime, time
from typing import Any

from rich.console import Console
from rich.markup import escape

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


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


def error(message: str) -> None:
    """`error: ...` on stderr; the message is printed literally (it may hold user text)."""
    err.print(f"[bold red]error:[/] {escape(message)}")


def warning(message: str) -> None:
    err.print(f"[yellow]warning:[/] {escape(message)}")


def note(message: str) -> None:
    err.print(message, markup=False)


def plural(count: int, noun: str) -> str:
    """`1 step`, `2 steps`."""
    return f"{count} {noun}{'' if count == 1 else 's'}"
