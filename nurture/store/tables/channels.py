"""What the channels keep: the outbox, the shared send slots, the callbacks handled."""

from datetime import datetime

from sqlmodel import Field

from nurture.store.tables.base import Stored, utc_column


class OutboxMessage(Stored, table=True):
    """A message the outbox channel kept instead of sending (development, demos, tests)."""

    __tablename__ = "outbox_message"

    id: int = Field(default=None, primary_key=True)
    # No foreign key (migration 0007): written in the transaction that writes its execution.
    execution_id: int | None = Field(default=None, unique=True)
    channel: str = Field(max_length=20)
    recipient: str = Field(max_length=320)
    subject: str | None = None
    body: str
    created_at: datetime = utc_column()


class ChannelSlot(Stored, table=True):
    """A kind of message's next free send slot, reserved by every daemon on the store (the
    shared rate limit: see nurture.store.slots). Seconds since the epoch, by the store's clock."""

    __tablename__ = "channel_slot"

    channel: str = Field(primary_key=True, max_length=20)
    next_slot_at: float


class ProviderCallback(Stored, table=True):
    """A provider callback already handled (e.g. `twilio:inbound:SM...`): a retry changes nothing."""

    __tablename__ = "provider_callback"

    key: str = Field(primary_key=True, max_length=200)
    received_at: datetime = utc_column()
