"""Identity's keys compared byte by byte on Postgres (issue 16): `lead_key.kind` and `value` are
`COLLATE "C"`. Equality, all identity asks of them, is the same in every deterministic
collation, and the primary key's index compares bytes instead of calling the locale's
collation: an import's three keys a lead cost the server less to look up and to insert.
SQLite compares them as bytes already (BINARY); nothing changes there.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03 18:40:00
"""

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            'ALTER TABLE lead_key ALTER COLUMN kind TYPE VARCHAR(20) COLLATE "C", '
            'ALTER COLUMN value TYPE VARCHAR(320) COLLATE "C"'
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE lead_key ALTER COLUMN kind TYPE VARCHAR(20) COLLATE pg_catalog.default, "
            "ALTER COLUMN value TYPE VARCHAR(320) COLLATE pg_catalog.default"
        )
