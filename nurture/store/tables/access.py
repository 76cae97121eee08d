"""The HTTP API's tokens and the idempotency keys of its lead ingest."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, text
from sqlmodel import Field

from nurture.store.tables.base import Stored, utc_column


class ApiToken(Stored, table=True):
    """A bearer token of the HTTP API: only its SHA-256 is kept (the token is shown once).

    One live token per name; a revoked token's name can be used again (rotation).
    """

    __tablename__ = "api_token"
    __table_args__ = (
        Index(
            "uq_api_token_live_name",
            "name",
            unique=True,
            sqlite_where=text("revoked_at IS NULL"),
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )

    id: int = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    token_hash: str = Field(unique=True, max_length=64)
    scopes: list[str] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = utc_column()
    revoked_at: datetime | None = utc_column(nullable=True)


class IngestKey(Stored, table=True):
    """An `Idempotency-Key` of `POST /api/leads` and the answer it got, replayed on a retry."""

    __tablename__ = "ingest_key"

    key: str = Field(primary_key=True, max_length=200)
    lead_id: int = Field(foreign_key="lead.id", index=True)
    response: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    body_hash: str | None = Field(default=None, max_length=64)
    """The SHA-256 of the request's lead: a retry with another body is refused (null before 0009)."""
    created_at: datetime = utc_column()
