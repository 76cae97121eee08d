"""SQL the figures need that SQLite and Postgres spell differently: durations, medians, days, reasons.

Every function returns a SQLAlchemy expression or statement for `dialect` ("sqlite" or
"postgresql"); the work happens in the database, never row by row in Python.
"""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    case,
    cast,
    extract,
    func,
    select,
    true,
)


def seconds(dialect: str, end: Any, start: Any) -> ColumnElement[float]:
    """`end - start` in seconds (SQLite keeps times as ISO text: julianday does the arithmetic)."""
    if dialect == "sqlite":
        return (func.julianday(end) - func.julianday(start)) * 86400.0
    return extract("epoch", end - start)


def day(dialect: str, moment: Any) -> ColumnElement[str]:
    """The UTC date of a time, as `YYYY-MM-DD` text."""
    if dialect == "sqlite":
        return func.substr(moment, 1, 10)
    return func.to_char(moment, "YYYY-MM-DD")


def count_where(condition: ColumnElement[bool]) -> ColumnElement[int]:
    """How many rows of the group meet the condition (portable `count(*) FILTER (WHERE ...)`)."""
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def reason(dialect: str, error: Any) -> ColumnElement[str]:
    """An error without the lead's own values (`..., lead has 12`), so reasons group together."""
    marker = ", lead has "
    where = func.instr(error, marker) if dialect == "sqlite" else func.strpos(error, marker)
    return case((where > 0, func.substr(error, 1, where - 1)), else_=error)


def medians(
    dialect: str,
    keys: Sequence[ColumnElement[Any]],
    value: ColumnElement[float],
    where: ColumnElement[bool],
) -> Select[Any]:
    """The median of `value` per group of `keys` over the rows `where` holds.

    Postgres has `percentile_cont`; SQLite numbers each group's rows in order with window
    functions and averages the middle one (odd count) or two (even count).
    """
    if dialect == "postgresql":
        median = func.percentile_cont(0.5).within_group(value)
        return select(*keys, median.label("median")).where(where).group_by(*keys)
    labelled = [key.label(f"k{n}") for n, key in enumerate(keys)]
    ranked = (
        select(
            *labelled,
            value.label("value"),
            func.row_number().over(partition_by=keys, order_by=value).label("rn"),
            func.count().over(partition_by=keys).label("n"),
        )
        .where(where)
        .subquery()
    )
    middle = [
        cast((ranked.c.n + 1) / 2, Integer),
        cast((ranked.c.n + 2) / 2, Integer),
    ]
    outer = [ranked.c[f"k{n}"] for n in range(len(keys))]
    return (
        select(*outer, func.avg(ranked.c.value).label("median"))
        .where(ranked.c.rn.in_(middle))
        .group_by(*outer)
    )


def within(column: Any, since: Any, until: Any) -> ColumnElement[bool]:
    """`since <= column < until`, either end open when None."""
    parts = [true()]
    if since is not None:
        parts.append(column >= since)
    if until is not None:
        parts.append(column < until)
    return and_(*parts)
