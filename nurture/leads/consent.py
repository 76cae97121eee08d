"""Consent: a lead's per-channel opt-out, the signed unsubscribe link, inbound STOP and START.

A message step for a channel the lead opted out of is skipped and logged, never sent
(dispatch checks `lead.opted_out`). Every change is kept as a consent event with its source.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, update
from sqlmodel import Session, col, select

from nurture.channels.unsubscribe import read_token
from nurture.errors import ConfigError, NotFound, NurtureError
from nurture.leads import engagement, replies
from nurture.leads.enrollment import stop_enrollments_on_reply
from nurture.leads.lookup import by_contact
from nurture.rules.contacts import ContactError, normalize_phone
from nurture.store.tables import ConsentEvent, InboundMessage, Lead

CHANNELS = ("whatsapp", "sms", "email")
STOP_WORDS = frozenset({"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "optout"})
START_WORDS = frozenset({"start", "unstop", "subscribe", "yes"})
"""Replies carriers and Twilio treat as opting out and back in (case and spaces ignored)."""


def channels_named(names: Iterable[str]) -> list[str]:
    """`all` or channel names, checked; the channels they stand for."""
    wanted: list[str] = []
    for name in (n.strip().lower() for n in names):
        if name == "all":
            return list(CHANNELS)
        if name not in CHANNELS:
            raise NurtureError(f"unknown channel {name!r}: use one of {', '.join(CHANNELS)}, all")
        wanted += [name] if name not in wanted else []
    if not wanted:
        raise NurtureError("name a channel: --channel sms|whatsapp|email|all")
    return wanted


def opted_out_of(lead: Lead) -> list[str]:
    """The channels a lead opted out of (`all` stands for every channel)."""
    return _channels_in(lead.opted_out)


def _channels_in(opted_out: Iterable[str]) -> list[str]:
    said = {entry.casefold() for entry in opted_out}
    return list(CHANNELS) if "all" in said else [c for c in CHANNELS if c in said]


def opt_out(
    session: Session,
    lead: Lead,
    channels: Iterable[str],
    now: datetime,
    source: str = "cli",
    detail: str | None = None,
) -> list[str]:
    """Opt the lead out of these channels; the ones that changed."""
    lead = _locked(session, lead)
    before = opted_out_of(lead)
    changed = [c for c in channels_named(channels) if c not in before]
    _record(session, lead, before + changed, changed, "opt_out", source, detail, now)
    return changed


def opt_in(
    session: Session,
    lead: Lead,
    channels: Iterable[str],
    now: datetime,
    source: str = "cli",
    detail: str | None = None,
) -> list[str]:
    """Opt the lead back into these channels; the ones that changed."""
    lead = _locked(session, lead)
    before = opted_out_of(lead)
    changed = [c for c in channels_named(channels) if c in before]
    kept = [c for c in before if c not in changed]
    _record(session, lead, kept, changed, "opt_in", source, detail, now)
    return changed


def _locked(session: Session, lead: Lead) -> Lead:
    """The lead re-read under a row lock: two opt-outs at once must not lose one."""
    return session.exec(select(Lead).where(Lead.id == lead.id).with_for_update()).one()


def _record(
    session: Session,
    lead: Lead,
    now_out: list[str],
    changed: list[str],
    action: str,
    source: str,
    detail: str | None,
    now: datetime,
) -> None:
    if not changed:
        return
    lead.opted_out = [c for c in CHANNELS if c in now_out]
    lead.updated_at = now
    session.add(lead)
    for channel in changed:
        event = ConsentEvent(lead_id=lead.id, channel=channel, action=action, source=source)
        event.detail, event.created_at = detail, now
        session.add(event)
    session.flush()


def opt_out_many(
    connection: Connection,
    wanted: Iterable[tuple[int, str]],
    now: datetime,
    source: str,
    detail: str | None = None,
) -> int:
    """Opt each (lead id, channel) out in a few statements (a provider says they unsubscribed);
    how many opt-outs were new."""
    asked: dict[int, set[str]] = {}
    for lead_id, channel in wanted:
        asked.setdefault(lead_id, set()).add(channel)
    if not asked:
        return 0
    table = Lead.__table__
    query = select(table.c.id, table.c.opted_out).where(table.c.id.in_(sorted(asked)))
    changes, events = [], []
    for row in connection.execute(query.with_for_update()):
        before = _channels_in(row.opted_out or [])
        new = [c for c in CHANNELS if c in asked[row.id] and c not in before]
        if new:
            now_out = [c for c in CHANNELS if c in before or c in new]
            changes.append({"_id": row.id, "opted_out": now_out, "updated_at": now})
            events += [_event_row(row.id, c, source, detail, now) for c in new]
    if changes:
        set_out = update(table).where(table.c.id == bindparam("_id"))
        connection.execute(
            set_out.values(opted_out=bindparam("opted_out"), updated_at=bindparam("updated_at")),
            changes,
        )
        connection.execute(insert(ConsentEvent.__table__), events)
    return len(events)


def _event_row(lead_id: int, channel: str, source: str, detail: str | None, now: datetime) -> dict:
    return {
        "lead_id": lead_id,
        "channel": channel,
        "action": "opt_out",
        "source": source,
        "detail": detail,
        "created_at": now,
    }


@dataclass(frozen=True)
class Unsubscribed:
    lead: Lead
    channel: str
    changed: bool


def unsubscribe(session: Session, token: str, secret: str | None, now: datetime) -> Unsubscribed:
    """Apply a signed unsubscribe token (from an email's link or List-Unsubscribe)."""
    if not secret:
        raise ConfigError("no unsubscribe secret: set NURTURE_UNSUBSCRIBE__SECRET in .env")
    lead_id, channel = read_token(secret, token)
    lead = session.get(Lead, lead_id)
    if lead is None:
        raise NotFound(f"the unsubscribe token names lead {lead_id}, which no longer exists")
    changed = opt_out(session, lead, [channel], now, "unsubscribe", "signed link")
    return Unsubscribed(lead, channel, bool(changed))


@dataclass(frozen=True)
class Inbound:
    lead: Lead
    opted_out: list[str]
    opted_in: list[str]
    stopped: list[int]
    """Enrollments ended because their sequence stops on reply."""
    reply: InboundMessage | None = None
    """The reply kept (its text); the coach's note about it waits for the daemon."""


def inbound(
    session: Session,
    lead: Lead,
    now: datetime,
    text: str | None = None,
    channel: str = "whatsapp",
    answered: Any = None,
    first: str | None = None,
) -> Inbound:
    """A message from the lead: it opens WhatsApp's 24-hour window, ends the enrollments whose
    sequence stops on reply; STOP opts out, START back in. The text is kept and the coach told.

    `answered`: the execution (id, enrollment_id, sequence_id, step_id) the message answers
    when it is known (an email's In-Reply-To), else the last message the lead got. `first`:
    the message made the lead (its funnel's name): it answers nothing, so it is no reply event
    and stops none of the enrollments it brought."""
    channel = channels_named([channel])[0]
    lead = _locked(session, lead)
    if lead.last_inbound_at is None or lead.last_inbound_at < now:
        lead.last_inbound_at, lead.updated_at = now, now
        session.add(lead)
    word = (text or "").strip().lower().replace(" ", "")
    detail = f"replied {text.strip()!r}" if text else None
    out = opt_out(session, lead, [channel], now, "inbound", detail) if word in STOP_WORDS else []
    back = opt_in(session, lead, [channel], now, "inbound", detail) if word in START_WORDS else []
    stopped: list[int] = []
    if first is None:
        engagement.replied(session.connection(), lead.id, now, channel, text, answered)
        stopped = stop_enrollments_on_reply(session, lead, now)
    reply = replies.record(session, lead, channel, text, now, stopped, out, first)
    return Inbound(lead, out, back, stopped, reply)


def inbound_from(
    session: Session,
    phone: str,
    text: str,
    now: datetime,
    channel: str = "sms",
    region: str | None = None,
) -> Inbound:
    """An inbound SMS or WhatsApp message by the sender's number, from a lead."""
    number = sender_number(phone, region)
    lead = by_contact(session, "phone", number)
    if lead is None:
        raise NotFound(f"no lead with phone {number}")
    return inbound(session, lead, now, text, channel)


def sender_number(phone: str, region: str | None = None) -> str:
    """The normalised number of a message's sender (`whatsapp:+1...` too); NotFound when it
    is no phone number."""
    try:
        return normalize_phone(phone.removeprefix("whatsapp:"), region)
    except ContactError as error:
        raise NotFound(str(error)) from None


def history(session: Session, lead: Lead) -> list[ConsentEvent]:
    """Every consent event of a lead, oldest first."""
    query = (
        select(ConsentEvent)
        .where(col(ConsentEvent.lead_id) == lead.id)
        .order_by(col(ConsentEvent.id))
    )
    return list(session.exec(query))
