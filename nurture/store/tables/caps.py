"""What frequency caps keep: each lead's cap ledger (see nurture.store.caps)."""

from sqlmodel import Field

from nurture.store.tables.base import Stored


class LeadCap(Stored, table=True):
    """The messages a lead got lately, from any sequence, as the caps count them: one row per
    lead, locked by the engine while it decides whether the lead's next message may go, so
    every daemon on the store counts the same messages."""

    __tablename__ = "lead_cap"

    # No foreign key (as the execution log): written only for a lead the engine holds a step of.
    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    """The lead's id."""
    sent: str = "[]"
    """JSON: [[epoch seconds, channel, enrollment id, step id, sequence name], ...], oldest first."""
