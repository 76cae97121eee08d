"""The coach's notifications that wait in the store: a lead's reply, and a send_notification step
outside the coach's working hours. The daemon (each tick) and `nurture run --once` deliver
them at the next working moment; an urgent one goes at once.

At most once, like every send (DESIGN.md §4): a note is claimed (`sending`, under a lease) and
committed before its provider call, then marked sent, failed, or pending again after a
temporary failure (with backoff). One whose daemon stopped during the call becomes `unknown`
once its lease expires: never sent twice, never lost from the store.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, insert, or_, select, update

from nurture.channels import (
    Channel,
    OutgoingMessage,
    PermanentFailure,
    SendResult,
    TemporaryFailure,
    UncertainSend,
)
from nurture.engine.config import NoteOptions
from nurture.errors import ChannelError
from nurture.rules.schedule import fit_window
from nurture.spec.window import SendWindow
from nurture.store.db import Store
from nurture.store.tables import Notification, OutboxMessage

LONGEST_BACKOFF = timedelta(hours=1)
CRASHED = "its daemon stopped during the provider call: it may have gone, so it is not sent again"


def working_from(now: datetime, hours: SendWindow | None, zone: str) -> datetime:
    """The first working moment at or after `now` (`now` without working hours)."""
    return now if hours is None else fit_window(now, hours, None, zone).at


@dataclass
class Delivered:
    """What one round did, for the daemon's log."""

    sent: int = 0
    waiting: int = 0
    failed: int = 0
    unknown: int = 0


@dataclass
class _Note:
    id: int
    message: OutgoingMessage
    result: SendResult | None = None
    error: ChannelError | None = None
    values: dict[str, Any] = field(default_factory=dict)


def deliver_waiting(
    store: Store, now: datetime, channel: Channel, options: NoteOptions
) -> Delivered:
    """Deliver every waiting note that is due and in working hours (urgent: whenever); how many."""
    done = Delivered()
    while True:
        notes = _claim(store, now, options, done)
        for note in notes:
            _send(channel, note)
        _finish(store, now, notes, done)
        if len(notes) < options.batch:
            return done


def _claim(store: Store, now: datetime, options: NoteOptions, done: Delivered) -> list[_Note]:
    """Claim the due notes in working hours (committed before any call); the others wait for
    the next working moment."""
    table = Notification.__table__
    with store.begin(immediate=True) as connection:
        done.unknown += _expired(connection, now)
        rows = _due(connection, now, options.batch)
        opening = working_from(now, options.hours, options.zone)
        ready, later, kept = [], [], []
        for row in rows:
            urgent = _urgent(row, options)
            if row.kind == "reply" and not options.replies:
                kept.append(row.id)
            elif urgent or opening <= now:
                ready.append(_Note(row.id, _message(row, urgent, options)))
            else:
                later.append(row.id)
        ids = [note.id for note in ready]
        lease = {"lease_expires_at": now + options.lease}
        _set(connection, ids, status="sending", attempts=table.c.attempts + 1, **lease)
        _set(connection, later, deliver_at=opening)
        _set(
            connection, kept, status="sent", error="kept in the store: [notifications] replies off"
        )
    done.waiting += len(later)
    return ready


def _expired(connection: Connection, now: datetime) -> int:
    table = Notification.__table__
    lost = (
        update(table)
        .where(table.c.status == "sending", table.c.lease_expires_at < now)
        .values(status="unknown", error=CRASHED, lease_expires_at=None)
    )
    return connection.execute(lost).rowcount


def _due(connection: Connection, now: datetime, batch: int) -> Sequence[Row[Any]]:
    table = Notification.__table__
    query = (
        select(table)
        .where(
            table.c.status == "pending",
            or_(table.c.deliver_at.is_(None), table.c.deliver_at <= now),
        )
        .order_by(table.c.id)
        .limit(batch)
    )
    if connection.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)  # several daemons share the notes
    return connection.execute(query).all()


def _urgent(row: Row[Any], options: NoteOptions) -> bool:
    return bool(row.urgent) or (row.kind == "reply" and options.urgent_replies)


def _message(row: Row[Any], urgent: bool, options: NoteOptions) -> OutgoingMessage:
    link = options.lead_page.format(id=row.lead_id) if options.lead_page and row.lead_id else None
    return OutgoingMessage(
        channel="notification",
        recipient=row.channel or "coach",
        body=row.message,
        subject=row.subject,
        key=f"note.{row.id}",
        lead_id=row.lead_id,
        urgent=urgent,
        link=link,
    )


def _set(connection: Connection, ids: list[int], **values: Any) -> None:
    if ids:
        table = Notification.__table__
        connection.execute(update(table).where(table.c.id.in_(ids)).values(**values))


def _send(channel: Channel, note: _Note) -> None:
    try:
        note.result = channel.send(note.message)
    except ChannelError as error:  # every failure a channel raises
        note.error = error


def _finish(store: Store, now: datetime, notes: list[_Note], done: Delivered) -> None:
    """Record each note's outcome (and the outbox's row of one the outbox kept)."""
    if not notes:
        return
    table = Notification.__table__
    with store.begin(immediate=True) as connection:
        for note in notes:
            values = _outcome(note, now, done)
            query = update(table).where(table.c.id == note.id, table.c.status == "sending")
            connection.execute(query.values(lease_expires_at=None, **values))
            if note.result is not None and note.result.outbox is not None:
                connection.execute(
                    insert(OutboxMessage.__table__),
                    [note.result.outbox | {"execution_id": None, "created_at": now}],
                )


def _outcome(note: _Note, now: datetime, done: Delivered) -> dict[str, Any]:
    error = note.error
    if error is None:
        done.sent += 1
        return {"status": "sent", "delivered_at": now, "error": None}
    if isinstance(error, TemporaryFailure):
        done.waiting += 1
        wait = timedelta(seconds=error.retry_after) if error.retry_after else timedelta(minutes=1)
        return {
            "status": "pending",
            "deliver_at": now + min(wait, LONGEST_BACKOFF),
            "error": str(error),
        }
    if isinstance(error, UncertainSend):
        done.unknown += 1
        return {"status": "unknown", "error": str(error)}
    done.failed += 1
    failed = error if isinstance(error, PermanentFailure) else PermanentFailure(str(error))
    return {"status": "failed", "error": str(failed)}
