"""`nurture init` (being written)."""


def init() -> None:
    """Not written yet."""
