"""nurture: lead-nurturing sequences as code."""

from importlib.metadata import version
from typing import TYPE_CHECKING, Any

__version__ = version("nurture")  # the one place it is written is pyproject.toml

if TYPE_CHECKING:
    from nurture.cli.runner import Result, invoke

__all__ = ["Result", "__version__", "invoke"]


def __getattr__(name: str) -> Any:
    """`nurture.invoke` and `nurture.Result` load the command line on first use, not at import."""
    if name in ("invoke", "Result"):
        from nurture.cli import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'nurture' has no attribute {name!r}")
