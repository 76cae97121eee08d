"""What providers call back with: a sent message's delivery status, a message from a lead.

A provider may call more than once for one thing (Twilio retries when an answer is slow):
each callback's key is kept (`provider_callback`) and a repeat changes nothing. Statuses
can arrive out of order; a later stage is never overwritten by an earlier one.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlmodel import Session, col, select

from nurture.engine.actions import CHANNEL_OF
from nurture.leads import consent, engagement
from nurture.leads.engagement import Happened
from nurture.store.tables import Execution, ProviderCallback

STAGES = {"accepted": 0, "scheduled": 0, "queued": 1, "sending": 2, "sent": 3}
STAGES |= {"delivered": 4, "undelivered": 4, "failed": 4, "read": 5, "canceled": 4}
"""How far along a message is, for each status Twilio reports."""
UNSUBSCRIBED_CODES = frozenset({"21610"})
"""Error codes that mean the recipient unsubscribed from this sender (Twilio: replied STOP)."""


def first_time(session: Session, key: str, now: datetime) -> bool:
    """Keep a callback's key; False when it was kept before (a repeat: do nothing)."""
    if session.get(ProviderCallback, key) is not None:
        return False
    session.add(ProviderCallback(key=key, received_at=now))
    session.flush()  # a concurrent repeat fails here on the primary key
    return True


@dataclass(frozen=True)
class Delivery:
    """A status report: which message (the provider's id), how far it got, and any error."""

    provider_id: str
    status: str
    error_code: str | None = None
    error_message: str | None = None

    @property
    def error(self) -> str | None:
        if not self.error_code:
            return None
        return f"{self.error_code}: {self.error_message}" if self.error_message else self.error_code


def record_delivery(session: Session, delivery: Delivery, now: datetime) -> Execution | None:
    """Store the status with the execution that sent the message (None: no such message).

    An unsubscribed error opts the lead out of the message's channel."""
    query = select(Execution).where(Execution.provider_id == delivery.provider_id)
    execution = session.exec(query.order_by(col(Execution.id))).first()
    if execution is None:
        return None
    if _stage(delivery.status) >= _stage(execution.delivery_status):
        values = {"delivery_status": delivery.status[:20], "delivery_updated_at": now}
        values |= {"delivery_error": delivery.error} if delivery.error else {}
        table = Execution.__table__
        session.connection().execute(update(table).where(table.c.id == execution.id), values)
        session.refresh(execution)
    _engaged(session, execution, delivery, now)
    channel = CHANNEL_OF.get(execution.action_type)
    if delivery.error_code in UNSUBSCRIBED_CODES and channel:
        detail = f"the provider reported {delivery.error}"
        consent.opt_out_many(
            session.connection(), [(execution.lead_id, channel)], now, "provider", detail
        )
    return execution


EVENTS = {"delivered": ("delivered",), "read": ("delivered", "read")}
EVENTS |= {"undelivered": ("bounced",), "failed": ("bounced",)}
"""The engagement events a status means (a read message was delivered, whatever came first)."""


def _engaged(session: Session, execution: Execution, delivery: Delivery, now: datetime) -> None:
    """The delivered, read or bounced events of a status, each once per message."""
    detail = {"provider": "twilio", "status": delivery.status}
    detail |= {"error": delivery.error} if delivery.error else {}
    for kind in EVENTS.get(delivery.status.lower(), ()):
        happened = Happened(
            execution.lead_id, kind, now, f"{kind}:{execution.id}", execution, detail=detail
        )
        engagement.record(session.connection(), happened)


def _stage(status: str | None) -> int:
    return -1 if status is None else STAGES.get(status.lower(), 0)
