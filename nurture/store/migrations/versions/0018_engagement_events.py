"""Engagement events (issue 16): what leads do with their messages, one row per thing done.

Deliveries and reads (Twilio's status callback), clicks on tracked links and email opens
(`nurture serve`'s /c/ and /o/), replies, bounces (`nurture events bounces`) and conversions,
each with the execution it belongs to. `key` drops repeats (a second click on a link, a
retried callback). Two indexes: a lead's events (conditions, scores, `explain`) and each
step's (`nurture stats`).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02 17:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "engagement_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=True),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("execution_id", sa.Integer(), nullable=True),
        sa.Column("enrollment_id", sa.Integer(), nullable=True),
        sa.Column("sequence_id", sa.Integer(), nullable=True),
        sa.Column("step_id", sa.String(length=100), nullable=True),
        sa.Column("link", sa.String(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_engagement_event")),
        sa.UniqueConstraint("key", name=op.f("uq_engagement_event_key")),
    )
    with op.batch_alter_table("engagement_event", schema=None) as batch_op:
        batch_op.create_index("ix_engagement_event_lead", ["lead_id", "at"], unique=False)
        batch_op.create_index(
            "ix_engagement_event_steps",
            ["sequence_id", "step_id", "kind", "execution_id", "enrollment_id", "at"],
            unique=False,
        )


def downgrade() -> None:
    op.drop_table("engagement_event")
