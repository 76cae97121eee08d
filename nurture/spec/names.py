"""Names and slugs: `Warm Lead Welcome` and `warm-lead-welcome` name the same sequence."""

import re
import unicodedata

_NON_WORD = re.compile(r"[^a-z0-9]+")


def slugify(name: str) -> str:
    """A lowercase, dash-separated ASCII slug of a display name."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return _NON_WORD.sub("-", ascii_name.lower()).strip("-")
