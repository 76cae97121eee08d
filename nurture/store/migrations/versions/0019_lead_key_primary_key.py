"""Identity's keys are their own primary key (issue 16): `lead_key` loses its `id`, and
(kind, value), unique already, becomes the primary key. One index less to write for every
key (an import writes three a lead), and on Postgres no sequence drawn a key.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03 15:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("pk_lead_key", "lead_key", type_="primary")
        op.drop_column("lead_key", "id")
        op.drop_constraint("uq_lead_key_kind_value", "lead_key", type_="unique")
        op.create_primary_key("pk_lead_key", "lead_key", ["kind", "value"])
        return
    with op.batch_alter_table("lead_key", recreate="always") as batch_op:
        batch_op.drop_constraint("uq_lead_key_kind_value", type_="unique")
        batch_op.drop_constraint("pk_lead_key", type_="primary")
        batch_op.drop_column("id")
        batch_op.create_primary_key("pk_lead_key", ["kind", "value"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("pk_lead_key", "lead_key", type_="primary")
        op.add_column("lead_key", sa.Column("id", sa.Integer(), sa.Identity(), nullable=False))
        op.create_primary_key("pk_lead_key", "lead_key", ["id"])
        op.create_unique_constraint("uq_lead_key_kind_value", "lead_key", ["kind", "value"])
        return
    with op.batch_alter_table("lead_key", recreate="always") as batch_op:
        batch_op.drop_constraint("pk_lead_key", type_="primary")
        batch_op.add_column(sa.Column("id", sa.Integer(), nullable=False))  # rowids, as copied
        batch_op.create_primary_key("pk_lead_key", ["id"])
        batch_op.create_unique_constraint("uq_lead_key_kind_value", ["kind", "value"])
