"""Emails in lower case: nurture now keeps every address lower-cased, so that `Ana@Example.com`
and `ana@example.com` are one lead (the upsert by email and `LEAD` lookups match the stored
text). Addresses stored before keep their case until this brings them in line. Downgrading
keeps the lower case (the original case is not recorded).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 11:00:00
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("UPDATE lead SET email = lower(email) WHERE email <> lower(email)")


def downgrade() -> None:
    pass
