"""Comments of a round-tripped YAML mapping kept where they stand when keys come and go.

ruamel.yaml hangs the comment lines *above* a key on the entry before it (on the deepest last
value of that entry). Adding a key after an entry, or removing an entry, would move the
comment above the next key, or lose it; these functions move those lines along with it.
"""

from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.tokens import CommentToken

Key = str | int


def _slot(node: CommentedMap | CommentedSeq, key: Key) -> tuple[list[Any], int]:
    """Where the comment after entry `key` lives: the entry's own, or its block value's last."""
    value = node[key]
    if isinstance(value, CommentedMap | CommentedSeq) and value and not value.fa.flow_style():
        last = list(value)[-1] if isinstance(value, CommentedMap) else len(value) - 1
        return _slot(value, last)
    index = 2 if isinstance(node, CommentedMap) else 0
    items = node.ca.items.setdefault(key, [None, None, None, None][: index + 2])
    while len(items) <= index:
        items.append(None)
    return items, index


def take_lines_after(node: CommentedMap | CommentedSeq, key: Key) -> str:
    """Remove and return the comment lines below entry `key` (its end-of-line comment stays)."""
    items, index = _slot(node, key)
    token = items[index]
    if token is None:
        return ""
    text: str = token.value
    cut = text.find("\n") + 1
    if cut == 0:
        return ""
    rest = text[cut:]
    if text.startswith("\n"):
        items[index] = None
    else:
        token.value = text[:cut]
    return rest


def put_lines_after(node: CommentedMap | CommentedSeq, key: Key, lines: str) -> None:
    """Append comment lines below entry `key`."""
    if not lines:
        return
    items, index = _slot(node, key)
    token = items[index]
    if token is None:
        items[index] = CommentToken("\n" + lines, CommentMark(0), None)
    else:
        token.value += lines


def insert_after(mapping: CommentedMap, after: str | None, key: str, value: Any) -> None:
    """Insert `key` after entry `after` (None: first), the comments below `after` moving below it."""
    keys = list(mapping)
    position = keys.index(after) + 1 if after is not None else 0
    moved = take_lines_after(mapping, after) if after is not None else ""
    mapping.insert(position, key, value)
    put_lines_after(mapping, key, moved)


def remove(mapping: CommentedMap, key: str) -> None:
    """Remove entry `key`; the comment lines below it stay, below the entry before it."""
    keys = list(mapping)
    position = keys.index(key)
    moved = take_lines_after(mapping, key)
    del mapping[key]
    if position > 0:
        put_lines_after(mapping, keys[position - 1], moved)


def replace(mapping: CommentedMap, key: str, value: Any) -> None:
    """Set entry `key` to a new value; the comment lines below the old value stay below it."""
    moved = take_lines_after(mapping, key)
    mapping[key] = value
    put_lines_after(mapping, key, moved)
