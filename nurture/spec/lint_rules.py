"""The names of validate's lint rules: what `lint_ignore` in nurture.toml may silence (the
settings read them without loading the linter and the files it reads)."""

from typing import Literal, get_args

LintRule = Literal[
    "same-priority",
    "coverage",
    "send-window",
    "never-holds",
    "unreachable",
    "whatsapp-window",
    "exclusive-priority",
]
RULES: tuple[str, ...] = get_args(LintRule)
"""Each warning ends with its rule in brackets; `lint_ignore` in nurture.toml silences rules."""
