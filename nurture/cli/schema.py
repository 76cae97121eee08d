"""`nurture schema` (being written)."""


def schema() -> None:
    """Not written yet."""
