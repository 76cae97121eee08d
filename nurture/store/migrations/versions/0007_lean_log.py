"""Leaner logs for the hot path and the import (issue 3's Postgres targets).

The two logs, executions and match decisions, and the outbox keep no foreign keys. The engine
writes an execution only for an enrollment it holds (leased, and locked in the completion's
transaction), its lead and sequence are the enrollment's; a decision is written with (or for)
its lead by the code that read the funnel's sequences; an outbox message is written in the
transaction that writes its execution; and no lead, funnel, sequence, enrollment or execution
is ever deleted (sequences and funnels are retired, not removed). The keys could not fail,
yet each was a lookup and a row lock per step or per imported lead (about 4-5 µs of Postgres
CPU apiece: four per step with the outbox channel, three per imported lead).

A decision's candidate list (every candidate and its checks, about 0.5 kB of JSON with two
sequences) is kept once per distinct list in `match_candidates` and named by the decision's
`candidates_id`; decisions made before keep theirs inline (`candidates`, now nullable).

The single-column indexes on `sequence_id` of both tables go too: the covering indexes of
migration 0005 (`ix_execution_steps`, `ix_enrollment_stats`) lead with that column.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 13:00:00
"""

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.exc import SAWarning

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

KEYS = {
    "execution": {
        "fk_execution_enrollment_id_enrollment": ("enrollment", "enrollment_id"),
        "fk_execution_lead_id_lead": ("lead", "lead_id"),
        "fk_execution_sequence_id_sequence": ("sequence", "sequence_id"),
    },
    "outbox_message": {
        "fk_outbox_message_execution_id_execution": ("execution", "execution_id"),
    },
    "match_decision": {
        "fk_match_decision_lead_id_lead": ("lead", "lead_id"),
        "fk_match_decision_funnel_id_funnel": ("funnel", "funnel_id"),
        "fk_match_decision_sequence_id_sequence": ("sequence", "sequence_id"),
    },
}
SEQUENCE_INDEXES = {
    "ix_execution_sequence_id": "execution",
    "ix_enrollment_sequence_id": "enrollment",
}


def upgrade() -> None:
    for name, table in SEQUENCE_INDEXES.items():
        op.drop_index(name, table_name=table)
    for table, keys in KEYS.items():
        with _altered(table) as batch:
            for name in keys:
                batch.drop_constraint(name, type_="foreignkey")
    op.create_table(
        "match_candidates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("candidates", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_match_candidates")),
        sa.UniqueConstraint("digest", name=op.f("uq_match_candidates_digest")),
    )
    with _altered("match_decision") as batch:
        batch.add_column(sa.Column("candidates_id", sa.Integer(), nullable=True))
        batch.alter_column("candidates", existing_type=sa.JSON(), nullable=True)


def downgrade() -> None:
    op.execute(
        "UPDATE match_decision SET candidates = (SELECT c.candidates FROM match_candidates c "
        "WHERE c.id = match_decision.candidates_id) WHERE candidates_id IS NOT NULL"
    )
    with _altered("match_decision") as batch:
        batch.alter_column("candidates", existing_type=sa.JSON(), nullable=False)
        batch.drop_column("candidates_id")
    op.drop_table("match_candidates")
    for table, keys in KEYS.items():
        with _altered(table) as batch:
            for name, (referred, column) in keys.items():
                batch.create_foreign_key(name, referred, [column], ["id"])
    for name, table in SEQUENCE_INDEXES.items():
        op.create_index(name, table, ["sequence_id"])


@contextmanager
def _altered(table: str) -> Iterator[Any]:
    """Alter a table (SQLite rebuilds it: batch mode reflects the tables its keys name, and
    warns about the enrollment's expression indexes, which the rebuild leaves alone)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipped unsupported reflection", SAWarning)
        with op.batch_alter_table(table) as batch:
            yield batch
