"""Where output goes: data to stdout, messages to stderr; `--json` prints data only."""

import json
from typing import Any

from rich.console import Console

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    """Machine output: one JSON document on stdout."""
    print(json.dumps(data, indent=2, default=str, ensure_ascii=False))


def error(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", markup=True, highlight=False)


def warning(message: str) -> None:
    err.print(f"[yellow]warning:[/] {message}")


def note(message: str) -> None:
    err.print(message)
