"""Token rotation and idempotency bodies: a revoked token's name can be used again (one live
token per name, a partial unique index), and each Idempotency-Key keeps its body's SHA-256 so
a retry with another body is refused. Downgrading fails while two tokens share a name.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

LIVE = sa.text("revoked_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("api_token", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_api_token_name"), type_="unique")
        batch_op.create_index(
            "uq_api_token_live_name",
            ["name"],
            unique=True,
            sqlite_where=LIVE,
            postgresql_where=LIVE,
        )
    with op.batch_alter_table("ingest_key", schema=None) as batch_op:
        batch_op.add_column(sa.Column("body_hash", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ingest_key", schema=None) as batch_op:
        batch_op.drop_column("body_hash")
    with op.batch_alter_table("api_token", schema=None) as batch_op:
        batch_op.drop_index("uq_api_token_live_name")
        batch_op.create_unique_constraint(batch_op.f("uq_api_token_name"), ["name"])
