"""Helpers for tests and benchmarks (yours too): many leads enrolled at once, straight into the store."""

from datetime import datetime

from sqlalchemy import insert, select

from nurture.store.db import Store
from nurture.store.tables import Enrollment, Lead, Sequence, SequenceVersion


def enroll_many(store: Store, count: int, due: datetime, sequence: str | None = None) -> None:
    """`count` new leads in a sequence (the only one, or the one with this slug), all due at `due`."""
    with store.begin(immediate=True) as connection:
        query = select(Sequence.id, Sequence.current_version)
        row = connection.execute(
            query.where(Sequence.slug == sequence) if sequence else query
        ).one()
        first_step = connection.execute(
            select(SequenceVersion.definition).where(
                SequenceVersion.sequence_id == row.id,
                SequenceVersion.version == row.current_version,
            )
        ).scalar_one()["steps"][0]["id"]
        for offset in range(0, count, 10_000):  # bounded statements: memory stays flat at 1,000,000
            size = min(10_000, count - offset)
            rows = [_lead(offset + n, due) for n in range(size)]
            ids = (
                connection.execute(
                    insert(Lead).returning(Lead.id, sort_by_parameter_order=True), rows
                )
                .scalars()
                .all()
            )
            connection.execute(insert(Enrollment), [
                {"lead_id": lead_id, "sequence_id": row.id, "version": row.current_version,
                 "status": "active", "step_id": first_step, "next_run_at": due, "attempts": 0,
                 "enrolled_at": due, "updated_at": due}
                for lead_id in ids
            ])  # fmt: skip


def _lead(number: int, now: datetime) -> dict:
    return {
        "name": f"Lead {number + 1}", "first_name": "Lead", "phone": "+15555550100",
        "email": f"lead{number + 1}@example.com", "score": 0, "tags": [], "fields": {}, "opted_out": [],
        "created_at": now, "updated_at": now,
    }  # fmt: skip
