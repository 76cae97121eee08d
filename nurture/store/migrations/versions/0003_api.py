"""HTTP API: bearer tokens (hashed) and the idempotency keys of lead ingestion.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _utc(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "api_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        _utc("created_at"),
        _utc("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_token")),
        sa.UniqueConstraint("name", name=op.f("uq_api_token_name")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_token_token_hash")),
    )
    op.create_table(
        "ingest_key",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("response", sa.JSON(), nullable=False),
        _utc("created_at"),
        sa.ForeignKeyConstraint(["lead_id"], ["lead.id"], name=op.f("fk_ingest_key_lead_id_lead")),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_ingest_key")),
    )
    with op.batch_alter_table("ingest_key", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ingest_key_lead_id"), ["lead_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ingest_key", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ingest_key_lead_id"))
    op.drop_table("ingest_key")
    op.drop_table("api_token")
