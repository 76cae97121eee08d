"""Consent events: every opt-out and opt-in of a lead, with its source.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 12:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consent_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("action", sa.String(length=10), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("detail", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["lead_id"], ["lead.id"], name=op.f("fk_consent_event_lead_id_lead")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_event")),
    )
    with op.batch_alter_table("consent_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consent_event_lead_id"), ["lead_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("consent_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consent_event_lead_id"))
    op.drop_table("consent_event")
