"""Edit a sequence file in place, keeping its comments and layout (ruamel.yaml round trip)."""

import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic.alias_generators import to_camel
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import LiteralScalarString, ScalarString
from ruamel.yaml.util import load_yaml_guess_indent

from nurture.spec import comments

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
    yaml.indent(mapping=mapping_indent(body), sequence=sequence_indent or 2, offset=offset or 0)
    doc = yaml.load(body)
    if not isinstance(doc, CommentedMap):
        raise ValueError("the file's top level is not a mapping")
    change(doc)
    out = io.StringIO()
    yaml.dump(doc, out)
    return bom + out.getvalue().replace("\n", newline)


def mapping_indent(text: str) -> int:
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
            position = _insert_position(doc)
            comments.insert_after(doc, list(doc)[position - 1] if position else None, key, value)

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


ATOMIC = frozenset({"fields", "variables"})
"""Mappings of the user's own keys (custom fields, WhatsApp variables): replaced whole, as given."""


def update(values: dict[str, Any], *path: str | int) -> Edit:
    """Set the mapping at `path` to `values` key by key: a key as the file spells it (`actionType`
    or `action_type`), a new key in the spelling of its siblings, placed after the key given
    before it in `values`; None removes a key. Unchanged values and every comment stay as written."""

    def change(doc: CommentedMap) -> None:
        target: Any = doc
        for part in path:
            target = target[part]
        update_mapping(target, values)

    return change


def update_mapping(mapping: CommentedMap, values: dict[str, Any]) -> None:
    """`update` on one mapping (see there)."""
    order = list(values)
    for key, value in values.items():
        spelled = spelling(mapping, key)
        current = mapping.get(spelled, _ABSENT)
        if value is None:
            if current is not _ABSENT:
                comments.remove(mapping, spelled)
        elif current is _ABSENT:
            new = styled(None, value, camel=spelled != key or _camel(mapping))
            comments.insert_after(mapping, _before(mapping, order, key), spelled, new)
        elif isinstance(value, dict) and isinstance(current, CommentedMap) and key not in ATOMIC:
            update_mapping(current, value)
        elif not _same(current, value):
            comments.replace(mapping, spelled, styled(current, value))


_ABSENT = object()


def spelling(mapping: CommentedMap, key: str) -> str:
    """How `mapping` spells the canonical `key`: as it stands, else like its siblings."""
    camel = to_camel(key)
    if key in mapping or camel in mapping:
        return key if key in mapping else camel
    return camel if _camel(mapping) else key


def _camel(mapping: CommentedMap) -> bool:
    """Whether the keys of `mapping` are the seed's camelCase (`actionType`)."""
    return any(re.search(r"[a-z][A-Z]", str(key)) for key in mapping)


def _before(mapping: CommentedMap, order: list[str], key: str) -> str | None:
    """The key of `mapping` the new `key` goes after: the closest one given before it in `order`."""
    earlier = [spelling(mapping, k) for k in order[: order.index(key)]]
    present = [k for k in earlier if k in mapping]
    if present:
        return present[-1]
    later = [spelling(mapping, k) for k in order[order.index(key) + 1 :]]
    first_later = next((k for k in later if k in mapping), None)
    keys = list(mapping)
    if first_later is None:
        return keys[-1] if keys else None
    at = keys.index(first_later)
    return keys[at - 1] if at else None


def _same(current: Any, value: Any) -> bool:
    """Whether writing `value` would change what `current` means (`Hot` is `[Hot]`)."""
    if isinstance(current, bool) or isinstance(value, bool):
        return type(current) is type(value) and current == value
    if isinstance(current, str) and isinstance(value, list) and value == [current]:
        return True
    return bool(current == value)


def styled(current: Any, value: Any, *, camel: bool = False) -> Any:
    """`value` as ruamel writes it, in the style of the value it replaces (quotes, `|`, flow);
    the keys of a new mapping in camelCase with `camel`."""
    if isinstance(value, str):
        if "\n" in value:
            return LiteralScalarString(value)
        kind = type(current)
        if isinstance(current, ScalarString) and kind is not LiteralScalarString:
            return kind(value)
        return value
    if isinstance(value, list):
        seq = CommentedSeq([styled(None, item, camel=camel) for item in value])
        flow = not isinstance(current, CommentedSeq) or current.fa.flow_style()
        if flow and all(not isinstance(item, dict | list) for item in value):
            seq.fa.set_flow_style()
        return seq
    if isinstance(value, dict):
        mapping = CommentedMap()
        for key, item in value.items():
            inner = camel and key not in ATOMIC
            mapping[to_camel(key) if camel else key] = styled(None, item, camel=inner)
        return mapping
    return value
