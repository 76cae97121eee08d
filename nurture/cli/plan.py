"""`nurture plan` and `nurture apply` (being written)."""


def plan() -> None:
    """Not written yet."""


def apply() -> None:
    """Not written yet."""
