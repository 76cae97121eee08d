"""`nurture validate` (being written)."""


def validate() -> None:
    """Not written yet."""
