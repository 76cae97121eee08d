"""Names and slugs: `Warm Lead Welcome` and `warm-lead-welcome` name the same sequence."""

import re
import unicodedata

_NON_WORD = re.compile(r"[^a-z0-9]+")


def slugify(name: str) -> str:
    """A lowercase, dash-separated ASCII slug of a display name."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return _NON_WORD.sub("-", ascii_name.lower()).strip("-")


MAX_ID = 2**63 - 1


def numeric_id(ref: int | str) -> int | None:
    """A store id given as a number or as ASCII digits that fit a 64-bit integer; else None."""
    if isinstance(ref, str):
        ref = ref.strip()
        if not (ref.isascii() and ref.isdigit() and len(ref) <= 19):
            return None
    number = int(ref)
    return number if 0 <= number <= MAX_ID else None
