"""nurture: lead-nurturing sequences as code."""

__version__ = "0.1.0"
