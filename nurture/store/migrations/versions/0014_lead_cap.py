"""Frequency caps counted in the store (issue 17): each lead's cap ledger.

One row per lead that got a message while caps were configured: the messages that still count
(JSON), locked by the engine while it decides whether the lead's next message may go, so every
daemon on the store keeps to the caps together. See nurture.store.caps.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 17:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lead_cap",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("sent", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lead_cap")),
    )


def downgrade() -> None:
    op.drop_table("lead_cap")
