"""Appointments become bookings (issue 18): a status, the enrollment that booked, the coach
whose slot it takes, the invitation's UID and revision, the revisions the lead was sent and the
coach's CalDAV calendar holds.

`uq_appointment_slot` is the store's promise that no slot is booked twice: a partial unique
index on (coach, starts_at) over booked appointments, whatever the number of daemons and
servers writing. Rows from before are `booked` (their times were fixed by the sequence);
where two of them share a start, all but the first become `conflict` so the index holds.
`starts_at` may be empty: an offered appointment has no slot until the lead picks one.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 17:00:00
"""

import sqlalchemy as sa
from alembic import op

import nurture.store.tables.base

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

BOOKED = sa.text("status = 'booked'")
COLUMNS = (
    ("enrollment_id", sa.Integer(), None),
    ("status", sa.String(length=20), "booked"),
    ("mode", sa.String(length=10), "fixed"),
    ("coach", sa.String(length=100), "coach"),
    ("uid", sa.String(length=200), None),
    ("revision", sa.Integer(), "0"),
    ("updated_at", nurture.store.tables.base.UTCDateTime(), None),
    ("synced_revision", sa.Integer(), None),
    ("invited_revision", sa.Integer(), None),
)
DOUBLES = """
UPDATE appointment SET status = 'conflict'
WHERE id NOT IN (SELECT MIN(id) FROM appointment GROUP BY coach, starts_at)
"""


INVITED = "UPDATE appointment SET invited_revision = 0"
"""Appointments made before invitations existed: their leads are not mailed one now."""


def upgrade() -> None:
    with op.batch_alter_table("appointment", schema=None) as batch_op:
        for name, kind, default in COLUMNS:
            nullable = default is None
            batch_op.add_column(sa.Column(name, kind, nullable=nullable, server_default=default))
        batch_op.alter_column(
            "starts_at", existing_type=nurture.store.tables.base.UTCDateTime(), nullable=True
        )
    op.execute(DOUBLES)
    op.execute(INVITED)
    with op.batch_alter_table("appointment", schema=None) as batch_op:
        batch_op.create_index("ix_appointment_enrollment_id", ["enrollment_id"], unique=False)
        batch_op.create_index(
            "uq_appointment_slot",
            ["coach", "starts_at"],
            unique=True,
            sqlite_where=BOOKED,
            postgresql_where=BOOKED,
        )


def downgrade() -> None:
    op.execute("DELETE FROM appointment WHERE starts_at IS NULL")
    with op.batch_alter_table("appointment", schema=None) as batch_op:
        batch_op.drop_index("uq_appointment_slot")
        batch_op.drop_index("ix_appointment_enrollment_id")
        batch_op.alter_column(
            "starts_at", existing_type=nurture.store.tables.base.UTCDateTime(), nullable=False
        )
        for name, _, _ in reversed(COLUMNS):
            batch_op.drop_column(name)
