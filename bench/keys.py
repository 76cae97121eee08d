"""The floor of identity's keys: what a lead_key row costs the store itself, without nurture.

    python bench/keys.py [--leads 150000] [--rounds 3] [--postgres URL]

Straight on the driver (sqlite3, psycopg), batches of 1,000 leads with three keys each
(external id, email, phone, sorted as the import sends them) inserted into `lead_key` as the
schema has it (primary key (kind, value), an index on lead_id) and into variants of it (no
lead_id index, SQLite's WITHOUT ROWID, a table without a key), in one transaction as an import
runs (on Postgres in a schema of its own, dropped after); then a batch's lookup (SQLite: a
probe a key through json_each, nurture.store.keys's own statement). The variants alternate in
rounds. Prints JSON: microseconds a key, the median over the rounds of each round's median
batch after the first 20.
What a lead's two keys beyond its external id cost at least is twice the schema's figure.
"""

import argparse
import json
import os
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from nurture.store.keys import _OWNERS_SQLITE as LOOKUP  # the statement the store runs

TABLE = (
    "CREATE TABLE lead_key (kind VARCHAR(20){c} NOT NULL, value VARCHAR(320){c} NOT NULL, "
    "lead_id INTEGER NOT NULL, created_at {t} NOT NULL{pk}){rowid}"
)
KEY = ", PRIMARY KEY (kind, value)"
INDEX = "CREATE INDEX ix_lead_key_lead_id ON lead_key (lead_id)"
VARIANTS = {  # name: (primary key, lead_id index, SQLite WITHOUT ROWID)
    "as the schema has it": (True, True, False),
    "no lead_id index": (True, False, False),
    "WITHOUT ROWID (SQLite)": (True, True, True),
    "no key, no index": (False, False, False),
}


def batch(first: int, stamp: object) -> list[tuple]:
    leads = range(first, first + 1000)
    return sorted(
        [("external_id", f"crm-{n}", n, stamp) for n in leads]
        + [("email", f"lead{n}@example.com", n, stamp) for n in leads]
        + [("phone", f"+1415{2000000 + n:07d}", n, stamp) for n in leads]
    )


def sqlite_case(folder: Path, name: str, leads: int) -> dict:
    key, index, without = VARIANTS[name]
    path = folder / f"{len(os.listdir(folder))}.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute(TABLE.format(c="", t="DATETIME", pk=KEY if key else "",
                            rowid=" WITHOUT ROWID" if without else ""))  # fmt: skip
    if index:
        db.execute(INDEX)
    db.execute("BEGIN IMMEDIATE")
    inserts, lookups = [], []
    for first in range(0, leads, 1000):
        rows = batch(first, "2026-12-04 09:00:00.000000")
        started = time.perf_counter()
        db.executemany("INSERT INTO lead_key VALUES (?, ?, ?, ?)", rows)
        inserts.append(time.perf_counter() - started)
        wanted = {kind: [v for k, v, *_ in rows if k == kind] for kind in ("email", "phone")}
        marks = [mark for kind, values in wanted.items() for mark in (kind, json.dumps(values))]
        started = time.perf_counter()
        db.execute(" UNION ALL ".join([LOOKUP] * len(wanted)), marks).fetchall()
        lookups.append(time.perf_counter() - started)
    db.execute("COMMIT")
    db.close()
    return {"store": "SQLite", "table": name, "insert_us_a_key": per_key(inserts, 3000),
            "lookup_us_a_key": per_key(lookups, 2000) if key else None}  # fmt: skip


def postgres_case(url: str, name: str, leads: int) -> dict:
    import psycopg

    key, index, _ = VARIANTS[name]
    insert = (
        "INSERT INTO lead_key SELECT kind, value, lead_id, %(at)s FROM unnest(%(kind)b::varchar[], "
        "%(value)b::varchar[], %(lead_id)b::integer[]) AS v(kind, value, lead_id)"
    )
    schema = f"nurture_bench_keys_{os.getpid()}"  # a real table (a temporary one logs no WAL)
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        db.execute(f"CREATE SCHEMA {schema}")
    with psycopg.connect(url) as db:
        db.execute(f"SET search_path = {schema}")
        db.execute(TABLE.format(c=' COLLATE "C"', t="TIMESTAMPTZ", pk=KEY if key else "",
                                rowid=""))  # fmt: skip
        if index:
            db.execute(INDEX)
        inserts, at = [], datetime.now(UTC)
        for first in range(0, leads, 1000):
            kinds, values, ids, _ = map(list, zip(*batch(first, at), strict=True))
            started = time.perf_counter()
            db.execute(insert, {"kind": kinds, "value": values, "lead_id": ids, "at": at})
            inserts.append(time.perf_counter() - started)
        db.commit()
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(f"DROP SCHEMA {schema} CASCADE")
    return {"store": "Postgres", "table": name, "insert_us_a_key": per_key(inserts, 3000)}


def per_key(seconds: list[float], keys: int) -> float:
    return round(statistics.median(seconds[20:]) * 1e6 / keys, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=150_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", default=os.environ.get("NURTURE_TEST_DATABASE_URL"))
    args = parser.parse_args()
    url = args.postgres and args.postgres.replace("postgresql+psycopg://", "postgresql://")
    runs: dict[tuple[str, str], list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="nurture-bench-keys-") as folder:
        for _ in range(args.rounds):
            for name, (_, _, without) in VARIANTS.items():
                got = [sqlite_case(Path(folder), name, args.leads)]
                if url and not without:
                    got.append(postgres_case(url, name, args.leads))
                for one in got:
                    runs.setdefault((one["store"], name), []).append(one)
    for found in runs.values():
        medians = {
            field: round(statistics.median(run[field] for run in found), 2)
            for field in ("insert_us_a_key", "lookup_us_a_key")
            if found[0].get(field) is not None
        }
        print(json.dumps(found[0] | medians | {"rounds": len(found)}), flush=True)


if __name__ == "__main__":
    main()
