"""nurture: lead-nurturing sequences as code."""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nurture.cli.runner import Result, invoke

__version__ = "0.1.0"
"""The one place the version is written (pyproject.toml reads it from here)."""

__all__ = ["Result", "__version__", "invoke"]


def __getattr__(name: str) -> Any:
    """`nurture.invoke` and `nurture.Result` load the command line on first use, not at import."""
    if name in ("invoke", "Result"):
        from nurture.cli import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'nurture' has no attribute {name!r}")
