"""Batched writes at the driver: a whole batch of rows in one statement (the hot path, DESIGN.md §4).

SQLite runs one prepared statement with `executemany`; Postgres runs one statement over
`unnest`, one array per column. SQLAlchemy's per-row parameter processing is skipped, so the
values are converted here once per column as its types would: UTC times (text on SQLite),
JSON as text. `among` is the matching read-side filter: `= ANY(:ids)` on Postgres (one plan
whatever the batch size), `IN (SELECT value FROM json_each(:ids))` on SQLite.

    ids = bulk.insert_ids(connection, execution, rows)
    bulk.update(connection, enrollment, states, match={"status": "running", "lease_owner": w})
"""

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    JSON,
    BindParameter,
    Connection,
    Integer,
    String,
    Table,
    any_,
    bindparam,
    column,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.elements import SQLCoreOperations

from nurture.store.tables import UTCDateTime

Convert = Callable[[Any], Any]


@lru_cache(maxsize=4096)  # a batch repeats its times (now, a due time shared by many rows)
def sqlite_time(value: datetime | None) -> str | None:
    """A UTC time as SQLite stores it (SQLAlchemy's format: `2025-03-03 09:00:00.000000`)."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value} given to the store: times are UTC-aware")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


class Dumped(str):
    """A JSON value encoded already (one value shared by many rows is encoded once)."""


def json_text(value: Any) -> str | None:
    if value is None or isinstance(value, Dumped):
        return value
    return json.dumps(value)


def json_column(values: list[Any]) -> list[str | None]:
    """A column of JSON values as text, a value shared by several rows (the same object)
    encoded once."""
    made: dict[int, str | None] = {}
    out = []
    for value in values:
        key = id(value)
        if key not in made:
            made[key] = json_text(value)
        out.append(made[key])
    return out


def _converter(table: Table, name: str, dialect: str) -> Convert | None:
    kind = table.c[name].type
    if isinstance(kind, JSON):
        return json_text
    if isinstance(kind, UTCDateTime) and dialect == "sqlite":
        return sqlite_time
    return None


def _columns(connection: Connection, table: Table, names: Sequence[str]) -> list[list[Any]]:
    return [[name, _converter(table, name, connection.dialect.name)] for name in names]


def _values(rows: Sequence[Mapping[str, Any]], columns: list[list[Any]]) -> list[list[Any]]:
    """One list per column, converted."""
    out = []
    for name, convert in columns:
        values = [row[name] for row in rows]
        if convert is json_text:
            out.append(json_column(values))
        else:
            out.append([convert(v) for v in values] if convert else values)
    return out


@lru_cache(maxsize=256)
def _pg_type(table: Table, name: str, dialect: Any) -> str:
    """A column's type for a cast of its array: without its collation (`COLLATE "C"[]` is no
    type; the column's own collation applies once the value is stored or compared)."""
    kind = table.c[name].type.dialect_impl(dialect)
    if isinstance(kind, String) and kind.collation:
        kind = String(kind.length)
    return kind.compile(dialect=dialect)


def _unnest(
    connection: Connection, table: Table, names: Sequence[str], *, ordinal: bool = False
) -> str:
    dialect = connection.dialect
    # %(name)b: binary arrays, which psycopg dumps several times faster than text ones
    arrays = ", ".join(f"%({name})b::{_pg_type(table, name, dialect)}[]" for name in names)
    if ordinal:
        return f"unnest({arrays}) WITH ORDINALITY AS v({', '.join(names)}, n)"
    return f"unnest({arrays}) AS v({', '.join(names)})"


def insert(connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert rows (dicts with the same keys) in one statement."""
    _insert(connection, table, rows, returning=False)


def insert_ids(
    connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]
) -> list[int]:
    """Insert rows; their new ids, in order."""
    return _insert(connection, table, rows, returning=True)


def _insert(
    connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]], *, returning: bool
) -> list[int]:
    if not rows:
        return []
    if returning and connection.dialect.name == "sqlite":
        # sqlite3's executemany returns no rows: ids past the largest, safe because every
        # writer holds the write lock (BEGIN IMMEDIATE).
        top = connection.exec_driver_sql(
            f"SELECT coalesce(max(id), 0) FROM {table.name}"
        ).scalar_one()
        ids = list(range(top + 1, top + 1 + len(rows)))
        _insert(
            connection,
            table,
            [{"id": i, **r} for i, r in zip(ids, rows, strict=True)],
            returning=False,
        )
        return ids
    if connection.dialect.name == "postgresql":
        sql, parameters = _pg_insert(connection, table, rows)
        if not returning:
            connection.exec_driver_sql(sql, parameters)
            return []
        return sorted(connection.exec_driver_sql(sql + " RETURNING id", parameters).scalars().all())
    names = list(rows[0])
    values = _values(rows, _columns(connection, table, names))
    marks = ", ".join("?" * len(names))
    sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({marks})"
    connection.exec_driver_sql(sql, list(zip(*values, strict=True)))
    return []


def _pg_insert(
    connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]
) -> tuple[str, dict[str, Any]]:
    """Postgres: the statement that inserts the rows, and its parameters. Rows go in in
    parameter order, so the serial ids they draw ascend in that order (the way SQLAlchemy's
    insertmanyvalues sorts RETURNING on Postgres)."""
    names = list(rows[0])
    values = _values(rows, _columns(connection, table, names))
    arrays, parameters = _shared(connection, table, dict(zip(names, values, strict=True)))
    chosen = ", ".join(_value(connection, table, name, arrays) for name in names)
    sql = (
        f"INSERT INTO {table.name} ({', '.join(names)}) SELECT {chosen} FROM "
        f"{_unnest(connection, table, arrays, ordinal=True)} ORDER BY v.n"
    )
    return sql, parameters


Part = tuple[Table, Sequence[Mapping[str, Any]]]
"""A table and the rows to insert into it (dicts with the same keys)."""


def insert_all(connection: Connection, parts: Sequence[Part]) -> None:
    """Insert rows into several tables (no row naming another's new id): on Postgres one
    statement, each table's insert a `WITH` part of it (one round trip to the server, where a
    webhook's batch made one a table); on SQLite one statement a table, as `insert`."""
    parts = [(table, rows) for table, rows in parts if rows]
    if connection.dialect.name != "postgresql" or len(parts) < 2:
        for table, rows in parts:
            insert(connection, table, rows)
        return
    statements: list[str] = []
    parameters: dict[str, Any] = {}
    for number, (table, rows) in enumerate(parts):
        sql, named = _pg_insert(connection, table, rows)
        prefix = f"p{number}_"  # each part's parameters apart: `%(lead_id)b` twice otherwise
        statements.append(_PARAMETER.sub(rf"%({prefix}\1)\2", sql))
        parameters |= {prefix + name: value for name, value in named.items()}
    withs = ", ".join(f"w{number} AS ({sql})" for number, sql in enumerate(statements))
    connection.exec_driver_sql(f"WITH {withs} SELECT 1", parameters)


_PARAMETER = re.compile(r"%\((\w+)\)([bs])")


def insert_held(
    connection: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    key: str,
    parent: Table,
    match: Mapping[str, Any],
) -> dict[int, int]:
    """Insert the rows whose `key` column names a `parent` row that still matches `match` (a
    lease), that row locked until the commit; {key: new id} of the rows inserted.

    The guard and the write are one statement: on Postgres a CTE that locks the parent rows
    (`FOR UPDATE`: a rescue that takes a lease waits for this commit, and a row it took first
    no longer matches), on SQLite a per-row `INSERT ... SELECT ... WHERE EXISTS` under the
    write lock (BEGIN IMMEDIATE)."""
    if not rows:
        return {}
    if connection.dialect.name == "postgresql":
        return _pg_insert_held(connection, table, rows, key, parent, match)
    top = connection.exec_driver_sql(f"SELECT coalesce(max(id), 0) FROM {table.name}").scalar_one()
    names = ["id", *rows[0]]
    numbered = [{"id": top + n, **row} for n, row in enumerate(rows, 1)]
    values = _values(numbered, _columns(connection, table, names))
    guard = "".join(f" AND {name} = ?" for name in match)
    sql = (
        f"INSERT INTO {table.name} ({', '.join(names)}) SELECT {', '.join('?' * len(names))} "
        f"WHERE EXISTS (SELECT 1 FROM {parent.name} WHERE id = ?{guard})"
    )
    at, extra = names.index(key), tuple(match.values())
    by_row = [(*row, row[at], *extra) for row in zip(*values, strict=True)]
    if connection.exec_driver_sql(sql, by_row).rowcount == len(rows):
        return {row[key]: row["id"] for row in numbered}
    inserted = connection.exec_driver_sql(  # a lease was lost: which rows went in
        f"SELECT {key}, id FROM {table.name} WHERE id > ? AND id <= ?", (top, top + len(rows))
    )
    return {key_: id_ for key_, id_ in inserted}


def _pg_insert_held(
    connection: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    key: str,
    parent: Table,
    match: Mapping[str, Any],
) -> dict[int, int]:
    names = list(rows[0])
    values = _values(rows, _columns(connection, table, names))
    arrays, parameters = _shared(connection, table, dict(zip(names, values, strict=True)))
    chosen = ", ".join(_value(connection, table, name, arrays) for name in names)
    guard = "".join(f" AND {name} = %(m_{name})s" for name in match)
    sql = (
        f"WITH held AS (SELECT id FROM {parent.name} WHERE id = ANY(%(held)s::int[]){guard} "
        f"FOR UPDATE) INSERT INTO {table.name} ({', '.join(names)}) SELECT {chosen} FROM "
        f"{_unnest(connection, table, arrays, ordinal=True)} "
        f"WHERE {_value(connection, table, key, arrays)} IN (SELECT id FROM held) ORDER BY v.n "
        f"RETURNING {key}, id"
    )
    parameters |= {"held": [row[key] for row in rows]}
    parameters |= {f"m_{name}": value for name, value in match.items()}
    return {key_: id_ for key_, id_ in connection.exec_driver_sql(sql, parameters)}


def update(
    connection: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    key: str = "_id",
    match: Mapping[str, Any] | None = None,
) -> int:
    """Set each row's values where `id` is its `key` (and every `match` column equals its value);
    how many rows changed."""
    if not rows:
        return 0
    match = dict(match or {})
    if connection.dialect.name == "postgresql":
        sql, parameters = _pg_update(connection, table, rows, key, match)
        return connection.exec_driver_sql(sql, parameters).rowcount
    names = [name for name in rows[0] if name != key]
    values = _values(rows, _columns(connection, table, names))
    ids = [row[key] for row in rows]
    sets = ", ".join(f"{name} = ?" for name in names)
    guard = "".join(f" AND {name} = ?" for name in match)
    sql = f"UPDATE {table.name} SET {sets} WHERE id = ?{guard}"
    extra = tuple(match.values())
    by_row = [(*row, i, *extra) for row, i in zip(zip(*values, strict=True), ids, strict=True)]
    return connection.exec_driver_sql(sql, by_row).rowcount


def _pg_update(
    connection: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    key: str,
    match: Mapping[str, Any],
) -> tuple[str, dict[str, Any]]:
    """Postgres: one UPDATE ... FROM unnest(one array per column), its parameters."""
    names = [name for name in rows[0] if name != key]
    values = _values(rows, _columns(connection, table, names))
    columns = {"id": [row[key] for row in rows]} | dict(zip(names, values, strict=True))
    arrays, parameters = _shared(connection, table, columns)
    sets = ", ".join(f"{name} = {_value(connection, table, name, arrays)}" for name in names)
    guard = "".join(f" AND t.{name} = %(m_{name})s" for name in match)
    sql = (
        f"UPDATE {table.name} AS t SET {sets} "
        f"FROM {_unnest(connection, table, arrays)} WHERE t.id = v.id{guard}"
    )
    parameters |= {f"m_{name}": value for name, value in match.items()}
    return sql, parameters


def _shared(
    connection: Connection, table: Table, columns: dict[str, list[Any]]
) -> tuple[list[str], dict[str, Any]]:
    """Postgres: the columns to send as arrays, and the parameters. A column whose values are
    all the same (a batch's time, status, version) is one parameter, not an array of copies:
    less to dump here and to unnest there. The first column (the key of an update) stays an
    array, so the statement has a row per value."""
    first, *rest = columns
    arrays, parameters = [first], {first: columns[first]}
    for name in rest:
        values = columns[name]
        if values.count(values[0]) == len(values):
            parameters[f"one_{name}"] = values[0]
        else:
            arrays.append(name)
            parameters[name] = values
    return arrays, parameters


def _one(connection: Connection, table: Table, name: str) -> str:
    return f"%(one_{name})s::{_pg_type(table, name, connection.dialect)}"


def _value(connection: Connection, table: Table, name: str, arrays: Sequence[str]) -> str:
    """A column's value in a row of `_unnest`: its array's, or the one value all rows share."""
    return f"v.{name}" if name in arrays else _one(connection, table, name)


def update_returning(
    connection: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    match: Mapping[str, Any],
) -> list[int]:
    """`update`, in one statement that returns the ids it changed (the rows that still matched):
    a guarded write that needs no locking read before it."""
    if not rows:
        return []
    if connection.dialect.name == "postgresql":
        sql, parameters = _pg_update(connection, table, rows, "_id", match)
        return list(connection.exec_driver_sql(sql + " RETURNING t.id", parameters).scalars())
    names = [name for name in rows[0] if name != "_id"]
    values = _values(rows, _columns(connection, table, names))
    ids = [row["_id"] for row in rows]
    # SQLite: UPDATE ... FROM a VALUES list (its columns are column1, column2...), in chunks
    # that stay under its limit of 32,766 parameters.
    width = len(names) + 1
    sets = ", ".join(f"{name} = v.column{n}" for n, name in enumerate(names, 2))
    guard = "".join(f" AND {table.name}.{name} = ?" for name in match)
    by_row = list(zip(ids, *values, strict=True))
    changed: list[int] = []
    step = max(1, (SQLITE_PARAMETERS - len(match)) // width)
    for start in range(0, len(by_row), step):
        chunk = by_row[start : start + step]
        listed = ", ".join(["(" + ", ".join("?" * width) + ")"] * len(chunk))
        sql = (
            f"UPDATE {table.name} SET {sets} FROM (VALUES {listed}) AS v "
            f"WHERE {table.name}.id = v.column1{guard} RETURNING {table.name}.id"
        )
        flat = [value for row in chunk for value in row] + list(match.values())
        changed += connection.exec_driver_sql(sql, tuple(flat)).scalars()
    return changed


SQLITE_PARAMETERS = 32_766


def among(connection: Connection, target: SQLCoreOperations[Any], values: Iterable[Any]) -> Any:
    """`target` is one of `values` (ids, or strings), as one bound parameter whatever their number."""
    wanted = sorted(set(values))
    if connection.dialect.name == "postgresql":
        kind = ARRAY(String if all(isinstance(value, str) for value in wanted) else Integer)
        return target == any_(bindparam("among", wanted, type_=kind, unique=True))
    listed: BindParameter[str] = bindparam("among", json.dumps(wanted), unique=True)
    return target.in_(select(column("value")).select_from(func.json_each(listed)).scalar_subquery())
