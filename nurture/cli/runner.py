"""`nurture.invoke`: run a nurture command in this process and get its exit code and output.

    import nurture

    result = nurture.invoke(["--project", "my-project", "validate"])
    if result.exit_code:
        print(result.stderr)  # error: sequences/welcome.yaml:4: ...

The command runs through the real command line (typer/click, the global options, the error
boundary), so it behaves as `nurture ...` does in a shell: a known error is exit code 1 and
`error: ...` on stderr, a usage error exit code 2, never an exception. Only an error that the
boundary lets through (with --debug, as the shell would show its traceback) is kept in
`Result.exception`. What a command changes in the process (the CLI's options and settings,
logging, environment variables, signal handlers) is put back when it returns.
"""

import logging
import os
import signal
import threading
import traceback
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from typer.testing import CliRunner  # typer's, which isolates the click that typer bundles

from nurture.cli.app import app
from nurture.cli.context import state

_one_at_a_time = threading.RLock()  # a command owns sys.stdout and sys.stderr while it runs


@dataclass(frozen=True)
class Result:
    """What a command did: its exit code, its stdout and stderr, and both as a terminal shows them."""

    exit_code: int
    stdout: str
    stderr: str
    output: str
    """stdout and stderr interleaved in the order they were written."""
    exception: BaseException | None = None
    """The error that escaped the command (only with --debug): the shell would print its traceback."""


def invoke(
    args: list[str], *, input: str | None = None, env: Mapping[str, str | None] | None = None
) -> Result:
    """Run `nurture ARGS...` in process; `input` is its stdin, `env` extra variables (None unsets).

    >>> result = nurture.invoke(["--project", "/nowhere", "validate"])
    >>> result.exit_code, result.stderr.startswith("error: ")
    (1, True)
    """
    with _one_at_a_time, _restored():
        ran = CliRunner().invoke(app, list(args), input=input, env=env, prog_name="nurture")
    escaped = None if isinstance(ran.exception, SystemExit) else ran.exception
    if escaped is None:
        return Result(ran.exit_code, ran.stdout, ran.stderr, ran.output)
    shown = "".join(traceback.format_exception(escaped))
    return Result(ran.exit_code, ran.stdout, ran.stderr + shown, ran.output + shown, escaped)


@contextmanager
def _restored() -> Iterator[None]:
    """Put back the process-wide state a command may change."""
    with ExitStack() as stack:
        for keeper in (_cli_state, _environment, _logging, _signals):
            stack.enter_context(keeper())
        yield


@contextmanager
def _cli_state() -> Iterator[None]:
    """The global options and the settings cached for the command that is running."""
    saved = dict(state.__dict__)
    try:
        yield
    finally:
        state.__dict__.clear()
        state.__dict__.update(saved)


@contextmanager
def _environment() -> Iterator[None]:
    """`nurture serve` sets the project and store for its workers in os.environ."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        for name in set(os.environ) - set(saved):
            del os.environ[name]
        os.environ.update(saved)


@contextmanager
def _logging() -> Iterator[None]:
    """Levels, handlers and switches of every logger (the daemon and uvicorn configure some)."""
    manager = logging.Logger.manager

    def loggers() -> list[logging.Logger]:
        found = [one for one in manager.loggerDict.values() if isinstance(one, logging.Logger)]
        return [logging.getLogger(), *found]

    saved = {
        id(one): (one.level, list(one.handlers), one.propagate, one.disabled) for one in loggers()
    }
    try:
        yield
    finally:
        for one in loggers():
            level, handlers, propagate, disabled = saved.get(id(one), (0, [], True, False))
            one.setLevel(level)
            one.handlers[:] = handlers
            one.propagate, one.disabled = propagate, disabled


@contextmanager
def _signals() -> Iterator[None]:
    """The daemon's SIGTERM and SIGINT handlers (only the main thread may set them)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in saved.items():
            signal.signal(number, handler)
