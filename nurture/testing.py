"""Helpers for tests and benchmarks (yours too): many leads enrolled at once, straight into the store."""

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlmodel import col

from nurture.store import bulk
from nurture.store.db import Store
from nurture.store.tables import Enrollment, Lead, Sequence, SequenceVersion

CHUNK = 10_000  # rows per statement: memory stays flat at 1,000,000


def enroll_many(
    store: Store,
    count: int,
    due: datetime,
    sequence: str | None = None,
    *,
    spacing: timedelta = timedelta(0),
) -> None:
    """`count` new leads in a sequence (the only one, or the one with this slug), due at `due`
    (the n-th at `due + n * spacing`)."""
    with store.begin(immediate=True) as connection:
        query = select(col(Sequence.id), col(Sequence.current_version))
        row = connection.execute(
            query.where(col(Sequence.slug) == sequence) if sequence else query
        ).one()
        first_step = connection.execute(
            select(col(SequenceVersion.definition)).where(
                SequenceVersion.sequence_id == row.id,
                SequenceVersion.version == row.current_version,
            )
        ).scalar_one()["steps"][0]["id"]
        for offset in range(0, count, CHUNK):
            numbers = range(offset, min(offset + CHUNK, count))
            ids = bulk.insert_ids(connection, Lead.__table__, [_lead(n, due) for n in numbers])
            enrollments = [
                {"lead_id": lead_id, "sequence_id": row.id, "version": row.current_version,
                 "status": "active", "step_id": first_step, "next_run_at": due + n * spacing,
                 "attempts": 0, "enrolled_at": due, "updated_at": due}
                for n, lead_id in zip(numbers, ids, strict=True)
            ]  # fmt: skip
            bulk.insert(connection, Enrollment.__table__, enrollments)


def _lead(number: int, now: datetime) -> dict:
    return {
        "name": f"Lead {number + 1}", "first_name": "Lead", "phone": "+15555550100",
        "email": f"lead{number + 1}@example.com", "score": 0, "tags": [], "fields": {},
        "opted_out": [], "created_at": now, "updated_at": now,
    }  # fmt: skip
