"""Edit a sequence file in place, keeping its comments and layout (ruamel.yaml round trip)."""

import io
from collections.abc import Callable
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.util import load_yaml_guess_indent

Edit = Callable[[CommentedMap], None]
_AFTER = ("priority", "active", "category", "description", "name")


def edit_text(text: str, change: Edit) -> str:
    """The text with `change` applied to its top mapping, all else as it was."""
    bom = "\ufeff" if text.startswith("\ufeff") else ""
    newline = "\r\n" if "\r\n" in text else "\n"
    body = text.removeprefix(bom).replace("\r\n", "\n")
    _, sequence_indent, offset = load_yaml_guess_indent(body)
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.explicit_start = body.lstrip().startswith("---")
    yaml.explicit_end = body.rstrip().endswith("\n...") or body.rstrip() == "..."
    yaml.indent(mapping=_mapping_indent(body), sequence=sequence_indent or 2, offset=offset or 0)
    doc = yaml.load(body)
    if not isinstance(doc, CommentedMap):
        raise ValueError("the file's top level is not a mapping")
    change(doc)
    out = io.StringIO()
    yaml.dump(doc, out)
    return bom + out.getvalue().replace("\n", newline)


def _mapping_indent(text: str) -> int:
    """How far a nested mapping is indented (ruamel guesses sequences only)."""
    lines = [
        line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]
    for parent, child in zip(lines, lines[1:], strict=False):
        if parent.rstrip().endswith(":") and not child.lstrip().startswith("-"):
            step = _indent(child) - _indent(parent)
            if step > 0:
                return step
    return 2


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def edit_file(path: Path, change: Edit) -> None:
    """Edit in place; bytes, not text mode, so CRLF line endings stay as they are."""
    text = path.read_bytes().decode("utf-8")
    path.write_bytes(edit_text(text, change).encode("utf-8"))


def set_key(key: str, value: object) -> Edit:
    """Set a top-level key, adding it after the identity keys when absent."""

    def change(doc: CommentedMap) -> None:
        if key in doc:
            doc[key] = value
        else:
            doc.insert(_insert_position(doc), key, value)

    return change


def drop_key(key: str) -> Edit:
    """Remove a top-level key, if there."""

    def change(doc: CommentedMap) -> None:
        doc.pop(key, None)

    return change


def _insert_position(doc: CommentedMap) -> int:
    keys = list(doc)
    for anchor in _AFTER:
        if anchor in keys:
            return keys.index(anchor) + 1
    return 0


def set_funnels(names: list[str]) -> Edit:
    """Replace the `funnels:` list, keeping its style (a new one is written as a flow list)."""

    def change(doc: CommentedMap) -> None:
        current = doc.get("funnels")
        if isinstance(current, CommentedSeq):
            for index in reversed(range(len(current))):
                if current[index] not in names:
                    del current[index]  # ruamel moves the other items' comments along
            current.extend(name for name in names if name not in current)
            return
        seq = CommentedSeq(names)
        seq.fa.set_flow_style()
        set_key("funnels", seq)(doc)

    return change


def set_split(funnel: str, weight: int | None) -> Edit:
    """Set (or, with None, drop) the sequence's weight in a funnel's split (`split:`)."""

    def change(doc: CommentedMap) -> None:
        split = doc.get("split")
        if not isinstance(split, CommentedMap):
            split = CommentedMap()
        if weight is None:
            split.pop(funnel, None)
        else:
            split[funnel] = weight
        if split:
            set_key("split", split)(doc)
        else:
            doc.pop("split", None)

    return change


def chain(*changes: Edit) -> Edit:
    def change(doc: CommentedMap) -> None:
        for each in changes:
            each(doc)

    return change
