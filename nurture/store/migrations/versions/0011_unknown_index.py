"""Unknown enrollments found fast (issue 11): the daemon settles them every few minutes, so it
looks them up, oldest first, through a partial index instead of scanning every enrollment.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 23:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("enrollment", schema=None) as batch_op:
        batch_op.create_index(
            "ix_enrollment_unknown",
            ["updated_at"],
            unique=False,
            sqlite_where=sa.text("status = 'unknown'"),
            postgresql_where=sa.text("status = 'unknown'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("enrollment", schema=None) as batch_op:
        batch_op.drop_index("ix_enrollment_unknown")
