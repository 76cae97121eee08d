"""Commands loaded on first use: `nurture --help` lists them without importing what they need.

Each command's module (and SQLAlchemy, Alembic, the providers below it) is imported only when
the command runs, or when its own `--help` is asked for. The top-level listing reads each
command's one-line help from its `Lazy` entry (a test checks it matches the command's own).
"""

import importlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from difflib import get_close_matches
from typing import Any, NamedTuple

import typer
import typer.main
from typer._click.exceptions import UsageError
from typer.core import TyperCommand, TyperGroup

Target = str | Callable[[], Any]
"""`module:attribute` of a command function or a typer.Typer, or a function returning one."""


class Lazy(NamedTuple):
    """A command: where it is, its line in the listing, the help panel it is listed in."""

    target: Target
    help: str
    panel: str | None = None


def load(name: str, entry: Lazy) -> Any:
    """The click command `name` of `entry`, its module imported now."""
    found = entry.target() if callable(entry.target) else _attribute(entry.target)
    if isinstance(found, typer.Typer):
        group = typer.main.get_group(found)
        group.name, group.rich_help_panel = name, entry.panel
        return group
    single = typer.Typer(add_completion=False)  # completion is the root's (`nurture --help`)
    single.command(name, rich_help_panel=entry.panel)(found)
    return typer.main.get_command(single)


def _attribute(target: str) -> Any:
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


class LazyGroup(TyperGroup):
    """A group whose commands, named in `lazy`, are imported when one of them is wanted."""

    lazy: dict[str, Lazy] = {}
    _listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return [*self.commands, *(name for name in self.lazy if name not in self.commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in self.commands or cmd_name not in self.lazy:
            return self.commands.get(cmd_name)
        entry = self.lazy[cmd_name]
        if self._listing:
            return TyperCommand(cmd_name, help=entry.help, rich_help_panel=entry.panel)
        self.commands[cmd_name] = load(cmd_name, entry)
        return self.commands[cmd_name]

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except UsageError as problem:  # typer suggests only among the commands loaded
            matches = get_close_matches(args[0], self.list_commands(ctx)) if args else []
            if matches and "Did you mean" not in problem.message:
                suggestions = ", ".join(f"{match!r}" for match in matches)
                problem.message = f"{problem.message.rstrip('.')}. Did you mean {suggestions}?"
            raise

    def format_help(self, ctx: Any, formatter: Any) -> None:
        with self.listing():
            super().format_help(ctx, formatter)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """The commands under their panels' headings, in click's plain help: the group's own
        help needs no rich (typer's rich help costs `nurture --help` a third of its start-up)."""
        panels: dict[str, list[tuple[str, str]]] = {}
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                line = command.get_short_help_str(limit=200)  # whole: write_dl wraps it
                panels.setdefault(command.rich_help_panel or "Commands", []).append((name, line))
        for panel, rows in panels.items():
            with formatter.section(panel):
                formatter.write_dl(rows)

    @contextmanager
    def listing(self) -> Iterator[None]:
        """While it lasts, commands not loaded yet stand in with their one-line help."""
        self._listing = True
        try:
            yield
        finally:
            self._listing = False
