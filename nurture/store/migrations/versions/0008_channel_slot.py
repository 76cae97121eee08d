"""Rate limits shared by every daemon on the store (issue 5): each kind of message's next slot.

One row per kind of message (`sms`, `email`, ...), made by its first send: `next_slot_at` is
the first moment, in seconds since the epoch by the store's clock, that no daemon has
reserved yet. See nurture.store.slots.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "channel_slot",
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("next_slot_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("channel", name=op.f("pk_channel_slot")),
    )


def downgrade() -> None:
    op.drop_table("channel_slot")
