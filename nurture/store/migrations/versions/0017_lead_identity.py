"""A lead is one person (issue 16): `lead_key` holds every external id, email and phone a lead
is known by, unique on (kind, value); `lead_merge` logs `nurture leads merge`;
`inbound_message` keeps what leads write; notifications wait for the coach's working hours
(`status`, `deliver_at`) and the daemon delivers them.

The keys of the leads stored before are backfilled: where old data holds two leads with one
email or phone, the first (lowest id) gets the key and the others are listed by
`nurture leads duplicates`, to merge. Notifications stored before were delivered already.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 16:40:00
"""

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.exc import SAWarning

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

PENDING = sa.text("status = 'pending'")
BACKFILL = """
INSERT INTO lead_key (kind, value, lead_id, created_at)
SELECT '{kind}', {column}, min(id), min(created_at) FROM lead
WHERE {column} IS NOT NULL AND {column} <> '' GROUP BY {column}
"""


def upgrade() -> None:
    op.create_table(
        "lead_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("value", sa.String(length=320), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lead_key")),
        sa.UniqueConstraint("kind", "value", name=op.f("uq_lead_key_kind_value")),
    )
    with op.batch_alter_table("lead_key", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lead_key_lead_id"), ["lead_id"], unique=False)
    for kind in ("external_id", "email", "phone"):
        op.execute(BACKFILL.format(kind=kind, column=kind))
    op.create_table(
        "lead_merge",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kept_id", sa.Integer(), nullable=False),
        sa.Column("merged_id", sa.Integer(), nullable=False),
        sa.Column("merged", sa.JSON(), nullable=False),
        sa.Column("moved", sa.JSON(), nullable=False),
        sa.Column("merged_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lead_merge")),
    )
    with op.batch_alter_table("lead_merge", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lead_merge_kept_id"), ["kept_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_lead_merge_merged_id"), ["merged_id"], unique=False)
    op.create_table(
        "inbound_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("text", sa.String(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_message")),
    )
    with op.batch_alter_table("inbound_message", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_inbound_message_lead_id"), ["lead_id"], unique=False)
    _notification_columns()


@contextmanager
def _altered(table: str) -> Iterator[Any]:
    """Alter a table (SQLite rebuilds it: batch mode reflects the tables its keys name, and
    warns about the lead's expression index, which the rebuild leaves alone)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipped unsupported reflection", SAWarning)
        with op.batch_alter_table(table) as batch:
            yield batch


def _notification_columns() -> None:
    with _altered("notification") as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=20), nullable=False, server_default="step")
        )
        batch_op.add_column(sa.Column("subject", sa.String(length=300), nullable=True))
        batch_op.add_column(
            sa.Column("status", sa.String(length=20), nullable=False, server_default="sent")
        )
        batch_op.add_column(sa.Column("deliver_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("error", sa.String(), nullable=True))
        batch_op.add_column(
            sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(
            "ix_notification_pending",
            ["deliver_at"],
            unique=False,
            sqlite_where=PENDING,
            postgresql_where=PENDING,
        )
    # The defaults served the rows stored before; new rows always say (the tables carry none).
    with _altered("notification") as batch_op:
        for name in ("kind", "status", "attempts"):
            batch_op.alter_column(name, server_default=None)


def downgrade() -> None:
    with _altered("notification") as batch_op:
        batch_op.drop_index("ix_notification_pending")
        for name in ("lease_expires_at", "error", "attempts", "delivered_at", "deliver_at"):
            batch_op.drop_column(name)
        for name in ("status", "subject", "kind"):
            batch_op.drop_column(name)
    op.drop_table("inbound_message")
    op.drop_table("lead_merge")
    op.drop_table("lead_key")
