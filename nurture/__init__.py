"""nurture: lead-nurturing sequences as code."""

from importlib.metadata import version

__version__ = version("nurture")  # the one place it is written is pyproject.toml
