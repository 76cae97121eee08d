"""Leads, why each got its sequence (or none), and their consent to each channel."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, String
from sqlmodel import Field

from nurture.store.tables.base import Stored, utc_column


class Lead(Stored, table=True):
    """A person a funnel brought in; email and phone are normalised (E.164)."""

    __tablename__ = "lead"

    id: int = Field(default=None, primary_key=True)
    external_id: str | None = Field(default=None, unique=True, max_length=200)
    name: str = Field(max_length=200)
    first_name: str = Field(max_length=100)
    email: str | None = Field(default=None, index=True, max_length=320)
    phone: str | None = Field(default=None, max_length=32)
    source: str | None = Field(default=None, max_length=100)
    status: str | None = Field(default=None, max_length=100)
    temperature: str | None = Field(default=None, max_length=50)
    score: int = 0
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    timezone: str | None = Field(default=None, max_length=64)
    funnel_id: int | None = Field(default=None, foreign_key="funnel.id", index=True)
    fields: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    opted_out: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    last_inbound_at: datetime | None = utc_column(nullable=True)
    created_at: datetime = utc_column()
    updated_at: datetime = utc_column()
    converted_at: datetime | None = utc_column(nullable=True)


class MatchCandidates(Stored, table=True):
    """A decision's candidates and their checks, kept once for every decision that came out
    the same (most leads of a funnel do): `digest` is the SHA-256 of the JSON."""

    __tablename__ = "match_candidates"

    id: int = Field(default=None, primary_key=True)
    digest: str = Field(unique=True, max_length=64)
    candidates: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))


class MatchDecision(Stored, table=True):
    """Why a lead got a sequence, or none: every candidate and its checks (for `explain`).

    The candidates are a MatchCandidates row (`candidates_id`); decisions made before
    migration 0007 keep theirs inline in `candidates`. Read them with store.decisions.
    """

    __tablename__ = "match_decision"

    # A log: no foreign keys (migration 0007), written with its lead; nothing is deleted.
    id: int = Field(default=None, primary_key=True)
    lead_id: int = Field(index=True)
    funnel_id: int | None = None
    sequence_id: int | None = None
    reason: str
    candidates: list[dict[str, Any]] | None = Field(
        default=None, sa_column=Column(JSON, nullable=True)
    )
    candidates_id: int | None = None
    decided_at: datetime = utc_column()


class ConsentEvent(Stored, table=True):
    """A lead opting out of (or back into) a channel: who said so, how, and when.

    source: cli, api (an event posted to the HTTP API), unsubscribe (a signed link), inbound (a
    STOP or START reply), provider
    (the provider reports the recipient unsubscribed).
    """

    __tablename__ = "consent_event"

    id: int = Field(default=None, primary_key=True)
    lead_id: int = Field(foreign_key="lead.id", index=True)
    channel: str = Field(max_length=20)
    action: str = Field(max_length=10)  # opt_out, opt_in
    source: str = Field(max_length=20)
    detail: str | None = None
    created_at: datetime = utc_column()


def _bytewise(length: int) -> Any:
    """A string compared byte by byte on Postgres too (`COLLATE "C"`, as SQLite's BINARY): a
    key's equality is the same in any collation, and its index is cheaper to probe and to
    write than in the database's locale (migration 0020)."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")


class LeadKey(Stored, table=True):
    """One way to know a lead: its external id (every one it came with), email or phone.

    kind: external_id, email, phone; the value normalised as the lead's columns are. The
    primary key is (kind, value): its index is what makes two writers of one new email take
    turns (no id of its own: one index less to write for every key, a third of what a key
    cost Postgres). No foreign key: an import claims its keys before it inserts the leads
    they name.
    """

    __tablename__ = "lead_key"

    kind: str = Field(sa_type=_bytewise(20), primary_key=True)
    value: str = Field(sa_type=_bytewise(320), primary_key=True)
    lead_id: int = Field(index=True)
    created_at: datetime = utc_column()


class LeadMerge(Stored, table=True):
    """`nurture leads merge KEEP OTHER`: the lead merged away, as it was, and what moved."""

    __tablename__ = "lead_merge"

    id: int = Field(default=None, primary_key=True)
    kept_id: int = Field(index=True)
    merged_id: int = Field(index=True)
    merged: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    moved: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    merged_at: datetime = utc_column()


class InboundMessage(Stored, table=True):
    """A message a lead sent us (a reply): its text, kept for the coach to read."""

    __tablename__ = "inbound_message"

    id: int = Field(default=None, primary_key=True)
    lead_id: int = Field(index=True)
    channel: str = Field(max_length=20)
    text: str | None = None
    received_at: datetime = utc_column()
    stopped: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    """The sequences the reply ended (stop_on_reply)."""
