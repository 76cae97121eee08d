"""Sequences with every applied version and its steps, funnels and their assignments.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _utc(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "sequence",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("slug", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("source_path", sa.String(length=500), nullable=True),
        _utc("created_at"),
        _utc("updated_at"),
        _utc("deleted_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_sequence"),
        sa.UniqueConstraint("name", name="uq_sequence_name"),
    )
    op.create_index("ix_sequence_slug", "sequence", ["slug"], unique=True)

    op.create_table(
        "sequence_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sequence_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("source_path", sa.String(length=500), nullable=True),
        _utc("applied_at"),
        sa.PrimaryKeyConstraint("id", name="pk_sequence_version"),
        sa.ForeignKeyConstraint(
            ["sequence_id"], ["sequence.id"], name="fk_sequence_version_sequence_id_sequence"
        ),
        sa.UniqueConstraint(
            "sequence_id", "version", name="uq_sequence_version_sequence_id_version"
        ),
    )
    op.create_index("ix_sequence_version_sequence_id", "sequence_version", ["sequence_id"])

    op.create_table(
        "step",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("step_id", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("action_type", sa.String(length=40), nullable=False),
        sa.Column("action_config", sa.JSON(), nullable=False),
        sa.Column("delay_seconds", sa.Integer(), nullable=False),
        sa.Column("conditions", sa.JSON(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_step"),
        sa.ForeignKeyConstraint(
            ["version_id"], ["sequence_version.id"], name="fk_step_version_id_sequence_version"
        ),
        sa.UniqueConstraint("version_id", "step_id", name="uq_step_version_id_step_id"),
        sa.UniqueConstraint("version_id", "position", name="uq_step_version_id_position"),
    )
    op.create_index("ix_step_version_id", "step", ["version_id"])

    op.create_table(
        "funnel",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("slug", sa.String(length=200), nullable=False),
        _utc("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_funnel"),
        sa.UniqueConstraint("name", name="uq_funnel_name"),
    )
    op.create_index("ix_funnel_slug", "funnel", ["slug"], unique=True)

    op.create_table(
        "funnel_assignment",
        sa.Column("funnel_id", sa.Integer(), nullable=False),
        sa.Column("sequence_id", sa.Integer(), nullable=False),
        _utc("created_at"),
        sa.PrimaryKeyConstraint("funnel_id", "sequence_id", name="pk_funnel_assignment"),
        sa.ForeignKeyConstraint(
            ["funnel_id"], ["funnel.id"], name="fk_funnel_assignment_funnel_id_funnel"
        ),
        sa.ForeignKeyConstraint(
            ["sequence_id"], ["sequence.id"], name="fk_funnel_assignment_sequence_id_sequence"
        ),
    )
    op.create_index("ix_funnel_assignment_sequence_id", "funnel_assignment", ["sequence_id"])


def downgrade() -> None:
    for table in ("funnel_assignment", "funnel", "step", "sequence_version", "sequence"):
        op.drop_table(table)  # their indexes go with them
