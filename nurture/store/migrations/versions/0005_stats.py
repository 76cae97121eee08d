"""Covering indexes for `nurture stats`: outcomes per sequence and version, steps, channels.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 12:00:00
"""

from alembic import op

revision = "0005"
down_revision = "0004"
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


# The completion time of completed enrollments, in order, so a median is an OFFSET into the
# index (nurture/store/aggregates.py). Expressions differ: days on SQLite (its times are text),
# an interval on Postgres, which also needs the columns INCLUDEd for an index-only scan.
COMPLETION = {
    "sqlite": ("(julianday(finished_at) - julianday(enrolled_at))", ""),
    "postgresql": ("(finished_at - enrolled_at)", " INCLUDE (finished_at, enrolled_at)"),
}
MEDIAN_INDEXES = {
    "ix_enrollment_completion": "sequence_id",
    "ix_enrollment_completion_version": "sequence_id, version",
}


# SQLite only: why steps were skipped or failed, without reading the table. (Postgres reads
# those rows from the table: a B-tree entry there cannot exceed about 2.7 kB, and an error
# message may be longer.)
REASONS = (
    "CREATE INDEX ix_execution_reasons ON execution (sequence_id, status, step_id, version, error) "
    "WHERE status IN ('skipped', 'failed')"
)


def upgrade() -> None:
    for name, (table, columns) in INDEXES.items():
        op.create_index(name, table, columns)
    completion, include = COMPLETION[op.get_bind().dialect.name]
    for name, listed in MEDIAN_INDEXES.items():
        op.execute(
            f"CREATE INDEX {name} ON enrollment ({listed}, {completion}){include} "
            "WHERE status = 'completed'"
        )
    if op.get_bind().dialect.name == "sqlite":
        op.execute(REASONS)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP INDEX ix_execution_reasons")
    for name in MEDIAN_INDEXES:
        op.execute(f"DROP INDEX {name}")
    for name, (table, _) in INDEXES.items():
        op.drop_index(name, table_name=table)
