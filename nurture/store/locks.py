"""Postgres advisory locks that make the writers of one key take turns (a lead's email).

SQLite needs none: a writing transaction holds the database's write lock from BEGIN IMMEDIATE.
"""

import hashlib
from collections.abc import Iterable

from sqlalchemy import Connection, text

_LOCK_ALL = text("SELECT pg_advisory_xact_lock(key) FROM unnest(CAST(:keys AS bigint[])) AS key")


def lock_key(name: str) -> int:
    """The signed 64-bit advisory lock key of a name: the first 8 bytes of its SHA-256."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def hold(connection: Connection, names: Iterable[str]) -> None:
    """Lock each name until the transaction ends, in key order so two writers cannot deadlock."""
    if connection.dialect.name != "postgresql":
        return
    keys = sorted({lock_key(name) for name in names})
    if keys:
        connection.execute(_LOCK_ALL, {"keys": keys})
