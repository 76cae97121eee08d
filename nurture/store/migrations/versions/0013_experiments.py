"""Experiments (issue 17): which variant of a step each lead got, funnel splits, canary versions.

- `execution.variant`: the variant of its step an execution ran (null: the step has none).
- `enrollment.variants`: the variants assigned at enrollment, `{step_id: [variant, version]}`
  (the version that had it), so a lead keeps its variant when an experiment ends before its
  step has run.
- `funnel_assignment.weight`: the sequence's weight in its funnel's split (null: no split).
- `sequence.canary_version`, `canary_share`, `canary_started_at`: a version that gets a share
  of new enrollments while the others stay on `current_version` (`apply --canary`).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 17:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("execution", schema=None) as batch_op:
        batch_op.add_column(sa.Column("variant", sa.String(length=40), nullable=True))
    with op.batch_alter_table("enrollment", schema=None) as batch_op:
        batch_op.add_column(sa.Column("variants", sa.JSON(), nullable=True))
    with op.batch_alter_table("funnel_assignment", schema=None) as batch_op:
        batch_op.add_column(sa.Column("weight", sa.Integer(), nullable=True))
    with op.batch_alter_table("sequence", schema=None) as batch_op:
        batch_op.add_column(sa.Column("canary_version", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("canary_share", sa.Float(), nullable=True))
        batch_op.add_column(
            sa.Column("canary_started_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("sequence", schema=None) as batch_op:
        batch_op.drop_column("canary_started_at")
        batch_op.drop_column("canary_share")
        batch_op.drop_column("canary_version")
    with op.batch_alter_table("funnel_assignment", schema=None) as batch_op:
        batch_op.drop_column("weight")
    with op.batch_alter_table("enrollment", schema=None) as batch_op:
        batch_op.drop_column("variants")
    with op.batch_alter_table("execution", schema=None) as batch_op:
        batch_op.drop_column("variant")
