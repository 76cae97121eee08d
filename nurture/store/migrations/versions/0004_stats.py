"""Covering indexes for `nurture stats`: outcomes per sequence and version, steps, channels.

Revision ID: 0004_stats
Revises: 0002
Create Date: 2026-11-25 12:00:00
"""

from alembic import op

revision = "0004_stats"
down_revision = "0002"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_enrollment_stats": (
        "enrollment",
        ["sequence_id", "version", "status", "enrolled_at", "finished_at"],
    ),
    "ix_execution_steps": (
        "execution",
        ["sequence_id", "status", "step_id", "version", "attempt", "due_at", "started_at"],
    ),
    "ix_execution_channel": ("execution", ["action_type", "status", "started_at"]),
}


# SQLite only: the completion time of completed enrollments, in days, in order, so a median
# is an OFFSET into this index (Postgres has percentile_cont). See nurture/store/aggregates.py.
COMPLETION = "(julianday(finished_at) - julianday(enrolled_at))"
SQLITE_INDEXES = {
    "ix_enrollment_completion": f"sequence_id, {COMPLETION}",
    "ix_enrollment_completion_version": f"sequence_id, version, {COMPLETION}",
}


def upgrade() -> None:
    for name, (table, columns) in INDEXES.items():
        op.create_index(name, table, columns)
    if op.get_bind().dialect.name == "sqlite":
        for name, columns in SQLITE_INDEXES.items():
            op.execute(f"CREATE INDEX {name} ON enrollment ({columns}) WHERE status = 'completed'")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in SQLITE_INDEXES:
            op.execute(f"DROP INDEX {name}")
    for name, (table, _) in INDEXES.items():
        op.drop_index(name, table_name=table)
