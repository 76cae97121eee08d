"""Who changed what from the dashboard (the files' history is git's, the versions the store's)."""

from datetime import datetime

from sqlmodel import Field

from nurture.store.tables.base import Stored, utc_column


class Activity(Stored, table=True):
    """One change made on the dashboard: who (the token's name), what, to which thing."""

    __tablename__ = "activity"

    id: int = Field(default=None, primary_key=True)
    at: datetime = utc_column()
    actor: str = Field(max_length=100)
    action: str = Field(max_length=40)
    subject: str = Field(max_length=500)
    detail: str | None = None
