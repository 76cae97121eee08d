"""Which keys each place in a sequence file takes, found by walking the pydantic models."""

import types
import typing
from collections.abc import Iterator
from functools import cache
from typing import Any

from pydantic import BaseModel, Tag
from pydantic.alias_generators import to_snake

from nurture.spec.positions import Loc


def keys_at(root: type[BaseModel], loc: Loc) -> set[str]:
    """Field names and aliases of the model found at `loc` below `root` (empty if none)."""
    found: list[Any] = [root]
    for part in loc:
        below = [tp for here in found for tp in _step(here, part)]
        found = below or found  # a part the models do not know (a union label) is skipped
    return {key for tp in found for model in _models(tp) for key in _keys(model)}


@cache
def key_homes(root: type[BaseModel]) -> dict[str, str]:
    """Every key of every model below `root`, with where it belongs: 'trigger_conditions'."""
    homes: dict[str, str] = {}
    for model, home in _walk(root):
        for key in _keys(model):
            homes.setdefault(key, home)
    return homes


@cache
def union_tags(root: type[BaseModel]) -> frozenset[str]:
    """The tags of the discriminated unions below `root` (the action types)."""
    tags = set()
    for model, _ in _walk(root):
        for info in model.model_fields.values():
            tags |= set(_tags(info.annotation))
    return frozenset(tags)


def _walk(root: type[BaseModel]) -> Iterator[tuple[type[BaseModel], str]]:
    """Every model below `root`, breadth first, with the dotted field path that first reaches it."""
    pending, seen = [(root, "")], {root}
    while pending:
        model, home = pending.pop(0)
        yield model, home
        for name, info in model.model_fields.items():
            for child in _models(info.annotation):
                if child not in seen:
                    seen.add(child)
                    pending.append((child, f"{home}.{name}" if home else name))


def _keys(model: type[BaseModel]) -> set[str]:
    fields = model.model_fields.items()
    return {name for name, _ in fields} | {info.alias for _, info in fields if info.alias}


def _step(tp: Any, part: str | int) -> list[Any]:
    """The types found one loc part below the type `tp`."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        info = tp.model_fields.get(to_snake(str(part)))
        return [info.annotation] if info else []
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        tags = [meta.tag for meta in tp.__metadata__ if isinstance(meta, Tag)]
        if tags:  # a member of a discriminated union: the part is its tag
            return [args[0]] if part in tags else []
        return _step(args[0], part)
    if origin in (typing.Union, types.UnionType):
        return [found for arg in args for found in _step(arg, part)]
    if origin is list and isinstance(part, int):
        return [args[0]]
    if origin is dict:
        return [args[1]]
    return []


def _models(tp: Any) -> list[type[BaseModel]]:
    """The models a field annotation may hold, looking through Optional, Annotated, list, dict."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    return [model for arg in typing.get_args(tp) for model in _models(arg)]


def _tags(tp: Any) -> Iterator[str]:
    if typing.get_origin(tp) is typing.Annotated:
        yield from (str(meta.tag) for meta in tp.__metadata__ if isinstance(meta, Tag))
    for arg in typing.get_args(tp):
        yield from _tags(arg)
