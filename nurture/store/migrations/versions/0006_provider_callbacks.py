"""Provider callbacks: delivery status on executions (found by provider id), callbacks seen.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 12:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("execution", schema=None) as batch_op:
        batch_op.add_column(sa.Column("delivery_status", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("delivery_error", sa.String(), nullable=True))
        batch_op.add_column(
            sa.Column("delivery_updated_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(batch_op.f("ix_execution_provider_id"), ["provider_id"], unique=False)
    op.create_table(
        "provider_callback",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_provider_callback")),
    )


def downgrade() -> None:
    op.drop_table("provider_callback")
    with op.batch_alter_table("execution", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_execution_provider_id"))
        batch_op.drop_column("delivery_updated_at")
        batch_op.drop_column("delivery_error")
        batch_op.drop_column("delivery_status")
