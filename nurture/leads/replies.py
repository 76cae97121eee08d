"""A lead's reply: its text kept (`inbound_message`), and a note for the coach that waits in the
store (`notification`, kind reply) until the daemon delivers it, in the coach's working hours.

Whichever way the reply came (the Twilio webhook, `nurture leads inbound`, the API's inbound
event), the coach hears who wrote, what, in which sequence, and whether it stopped it.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_
from sqlmodel import Session, col, select

from nurture.leads.enrollment import LIVE
from nurture.store.tables import Enrollment, InboundMessage, Lead, Notification
from nurture.store.tables import Sequence as SequenceRow

QUOTED = 1000
"""The longest reply text a notification quotes (the whole text is kept with the reply)."""


def record(
    session: Session,
    lead: Lead,
    channel: str,
    text: str | None,
    now: datetime,
    stopped: Sequence[int],
    opted_out: Sequence[str] = (),
    first: str | None = None,
) -> InboundMessage:
    """Keep the reply and leave the coach's note to deliver (`stopped`: the enrollments it ended;
    `first`: the funnel of the lead this message made)."""
    ended = _sequences(session, col(Enrollment.id).in_(list(stopped)))
    running = _sequences(
        session, and_(col(Enrollment.lead_id) == lead.id, col(Enrollment.status).in_(LIVE))
    )
    reply = InboundMessage(lead_id=lead.id, channel=channel, text=text, received_at=now)
    reply.stopped = ended
    session.add(reply)
    verb = "wrote" if first else "replied"
    note = Notification(
        lead_id=lead.id,
        kind="reply",
        status="pending",
        subject=f"{'New lead ' if first else ''}{lead.name} {verb} ({channel})"[:300],
        message=note_text(lead, channel, text, ended, running, opted_out, first),
        created_at=now,
    )
    session.add(note)
    session.flush()
    return reply


def _sequences(session: Session, which: Any) -> list[str]:
    query = (
        select(SequenceRow.name)
        .join(Enrollment, col(Enrollment.sequence_id) == col(SequenceRow.id))
        .where(which)
        .order_by(col(Enrollment.id))
    )
    return list(dict.fromkeys(session.exec(query)))


def note_text(
    lead: Lead,
    channel: str,
    text: str | None,
    ended: list[str],
    running: list[str],
    opted_out: Sequence[str],
    first: str | None = None,
) -> str:
    """What the coach reads: who wrote, what, and where the lead stands."""
    contacts = ", ".join(c for c in (lead.email, lead.phone) if c)
    who = f"{lead.name} ({contacts})" if contacts and contacts != lead.name else lead.name
    verb = "wrote first" if first else "replied"
    lines = [f"{who} {verb} by {channel}: {_quoted(text)}"]
    if first:
        lines.append(f"A new lead, from funnel {first}.")
    if ended:
        lines.append(
            f"This reply stopped {', '.join(ended)} (stop_on_reply): the coach answers in person."
        )
    if running:
        lines.append(f"Still running: {', '.join(running)}.")
    if not ended and not running:
        lines.append("Not in a sequence now.")
    if opted_out:
        lines.append(f"They opted out of {', '.join(opted_out)}.")
    return "\n".join(lines)


def recent_replies(session: Session, limit: int = 50, after: int = 0) -> list[dict[str, Any]]:
    """The newest `limit` replies of every lead (those after reply `after`), newest first, with
    the lead's name: the dashboard's inbox."""
    query = (
        select(InboundMessage, Lead.name)
        .outerjoin(Lead, col(Lead.id) == InboundMessage.lead_id)
        .where(col(InboundMessage.id) > after)
        .order_by(col(InboundMessage.id).desc())
        .limit(limit)
    )
    return [reply.model_dump() | {"lead": name} for reply, name in session.exec(query)]


def _quoted(text: str | None) -> str:
    said = (text or "").strip()
    return f"“{said if len(said) <= QUOTED else said[:QUOTED] + '…'}”" if said else "(no text)"


def unknown_sender(
    session: Session, sender: str, channel: str, text: str | None, now: datetime, why: str
) -> Notification:
    """A note for the coach about a message from a number or address no lead has (`why`: what
    became of it)."""
    note = Notification(
        lead_id=None,
        kind="reply",
        status="pending",
        subject=f"Message from {sender}, not a lead ({channel})"[:300],
        message=f"{sender} wrote by {channel}: {_quoted(text)}\n{why}",
        created_at=now,
    )
    session.add(note)
    session.flush()
    return note


def replies_of(session: Session, lead_id: int) -> list[dict[str, Any]]:
    """Every reply of the lead, oldest first, as `leads show` and the API show them."""
    query = (
        select(InboundMessage)
        .where(InboundMessage.lead_id == lead_id)
        .order_by(col(InboundMessage.id))
    )
    return [
        {
            "received_at": reply.received_at,
            "channel": reply.channel,
            "text": reply.text,
            "stopped": list(reply.stopped),
        }
        for reply in session.exec(query)
    ]
