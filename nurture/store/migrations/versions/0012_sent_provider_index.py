"""The execution log indexes provider ids only where there is one (issue 14).

`ix_execution_provider_id` finds the execution a provider's delivery callback names. Most
steps send nothing (waits, scores, tags, tasks, skips), and every one of them added a NULL
entry to it: a B-tree insert per step that no query reads. The index becomes partial
(`WHERE provider_id IS NOT NULL`); `provider_id = :id` still uses it on both stores.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 03:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

SENT = sa.text("provider_id IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("execution", schema=None) as batch_op:
        batch_op.drop_index("ix_execution_provider_id")
        batch_op.create_index(
            "ix_execution_provider_id",
            ["provider_id"],
            unique=False,
            sqlite_where=SENT,
            postgresql_where=SENT,
        )


def downgrade() -> None:
    with op.batch_alter_table("execution", schema=None) as batch_op:
        batch_op.drop_index("ix_execution_provider_id")
        batch_op.create_index("ix_execution_provider_id", ["provider_id"], unique=False)
