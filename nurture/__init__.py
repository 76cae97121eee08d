"""nurture: lead-nurturing sequences as code."""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nurture.cli.runner import Result, invoke

    __version__: str

__all__ = ["Result", "__version__", "invoke"]


def __getattr__(name: str) -> Any:
    """`nurture.invoke` and `nurture.Result` load the command line on first use, not at import;
    `__version__` is read when asked (importlib.metadata costs a command's start-up 30 ms)."""
    if name == "__version__":
        from importlib.metadata import version

        return version("nurture")  # the one place it is written is pyproject.toml
    if name in ("invoke", "Result"):
        from nurture.cli import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'nurture' has no attribute {name!r}")
