"""A leaner execution log and enrollment for the hot path (issue 3's Postgres targets).

The execution log keeps one foreign key, to its enrollment: its lead and sequence are copies
of the enrollment's (whose own keys guard them), and no lead, enrollment or execution is ever
deleted. Each dropped key was a lookup and a row lock on the lead and the sequence for every
step. The single-column indexes on `sequence_id` of both tables go too: the covering indexes
of migration 0005 (`ix_execution_steps`, `ix_enrollment_stats`) lead with that column.

Revision ID: 0007
Revises: 0005 (the lead engineer rechains it after 0006)
Create Date: 2026-11-25 13:00:00
"""

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from alembic import op
from sqlalchemy.exc import SAWarning

revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None

EXECUTION_KEYS = {
    "fk_execution_lead_id_lead": ("lead", "lead_id"),
    "fk_execution_sequence_id_sequence": ("sequence", "sequence_id"),
}
SEQUENCE_INDEXES = {
    "ix_execution_sequence_id": "execution",
    "ix_enrollment_sequence_id": "enrollment",
}


def upgrade() -> None:
    for name, table in SEQUENCE_INDEXES.items():
        op.drop_index(name, table_name=table)
    with _rebuilt_on_sqlite() as batch:
        for name in EXECUTION_KEYS:
            batch.drop_constraint(name, type_="foreignkey")


def downgrade() -> None:
    with _rebuilt_on_sqlite() as batch:
        for name, (table, column) in EXECUTION_KEYS.items():
            batch.create_foreign_key(name, table, [column], ["id"])
    for name, table in SEQUENCE_INDEXES.items():
        op.create_index(name, table, ["sequence_id"])


@contextmanager
def _rebuilt_on_sqlite() -> Iterator[Any]:
    """Alter the execution table (SQLite rebuilds it: batch mode reflects the tables its keys
    name, and warns about the enrollment's expression indexes, which the rebuild leaves alone)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipped unsupported reflection", SAWarning)
        with op.batch_alter_table("execution") as batch:
            yield batch
