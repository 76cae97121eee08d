"""What people send us: a lead's answer by email, an SMS or WhatsApp message by its number.

An email (the raw RFC 822 message, from `POST /webhooks/email` or `nurture leads inbound
--email-file`) is matched to the email it answers by its In-Reply-To and References against
the Message-ID nurture gave each step's email (the execution's provider id), else to the lead
whose address sent it (the identity rules' email key). An automatic answer is not a reply; a
bounce goes to the bounce handling. A reply is then what an SMS reply is: kept, the lead's
stop_on_reply sequences stopped, the coach told (nurture.leads.consent.inbound).
`read_mailbox` takes the unseen emails of an IMAP mailbox (`[inbound_email.imap]`), as
`nurture run` does at each look.

A text from a number no lead has makes a lead when `[twilio] inbound_funnel` names a funnel
(through the same ingestion as the HTTP API's leads, enrolled by the usual matching): a person
who writes first is a lead. Without it, the coach is told of the message and no lead is made.
A STOP from an unknown number makes no lead.
"""

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy import Row, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from nurture.channels.config import ImapConfig
from nurture.channels.imap import ImapMailbox
from nurture.engine import bounces, callbacks
from nurture.errors import NotFound, NurtureError, StoreError
from nurture.leads import consent, ingest, replies
from nurture.leads.consent import Inbound
from nurture.leads.lookup import by_contact
from nurture.leads.records import LeadInput, LeadRules, find_funnel
from nurture.rules.contacts import ContactError, normalize_email
from nurture.rules.email_replies import EmailReply, read_email
from nurture.store.db import Store
from nurture.store.tables import Execution, Lead

Outcome = Literal["reply", "auto", "bounce", "repeat", "unknown"]
execution = Execution.__table__
COLUMNS = tuple(execution.c[name] for name in ("id", "lead_id", "enrollment_id", "sequence_id"))
COLUMNS += (execution.c.step_id,)


@dataclass(frozen=True)
class Received:
    """What became of a received email or text, in words for the log and the caller."""

    outcome: Outcome
    detail: str
    lead_id: int | None = None
    matched_by: str | None = None
    """How the lead was found: in-reply-to (the message it answers), sender, new (made)."""
    stopped: tuple[int, ...] = ()
    """The enrollments the reply stopped (stop_on_reply)."""
    opted_out: tuple[str, ...] = ()

    @classmethod
    def reply(cls, detail: str, inbound: Inbound, matched_by: str | None) -> "Received":
        stopped, out = tuple(inbound.stopped), tuple(inbound.opted_out)
        return cls("reply", detail, inbound.lead.id, matched_by, stopped, out)

    def to_dict(self) -> dict[str, object]:
        return {
            "outcome": self.outcome,
            "detail": self.detail,
            "lead_id": self.lead_id,
            "matched_by": self.matched_by,
            "stopped": len(self.stopped),
            "opted_out": list(self.opted_out),
        }


def email(session: Session, data: bytes, now: datetime) -> Received:
    """Receive a raw email: a reply is recorded once (by its Message-ID); NurtureError when the
    bytes are not an email."""
    mail = read_email(data)
    if mail.kind == "bounce":
        return _bounced(session, mail, now)
    if mail.kind == "auto":
        return Received("auto", f"an automatic answer ({mail.why}): not a reply, nothing recorded")
    if mail.message_id and not callbacks.first_time(session, _key(mail.message_id), now):
        return Received("repeat", f"the email {mail.message_id} was received before")
    lead, answered, how = _lead_of(session, mail)
    if lead is None:
        return Received("unknown", f"no email was sent to {mail.sender} and no lead has it")
    result = consent.inbound(session, lead, now, mail.text, "email", answered)
    said = f"lead {lead.id} {lead.name} replied by email"
    return Received.reply(said, result, how)


def _key(message_id: str) -> str:
    """The once-key of an email: its Message-ID, hashed when too long for the column."""
    key = f"email:inbound:{message_id}"
    return key if len(key) <= 200 else "email:inbound:" + hashlib.sha256(key.encode()).hexdigest()


def _bounced(session: Session, mail: EmailReply, now: datetime) -> Received:
    reports = [mail.report] if mail.report is not None else []
    tally = bounces.record_reports(session.connection(), reports, now)
    if tally.recorded or tally.repeated:
        detail = f"a bounce: {tally.recorded} recorded, {tally.repeated} recorded before"
    else:
        detail = f"a bounce ({mail.why}): no email sent matches it"
    return Received("bounce", detail)


def _lead_of(session: Session, mail: EmailReply) -> tuple[Lead | None, Row | None, str | None]:
    """The lead and the execution the email answers (In-Reply-To, References), else the lead
    whose address sent it."""
    for message_id in mail.answers:
        query = select(*COLUMNS).where(execution.c.provider_id == message_id)
        sent = session.connection().execute(query.order_by(execution.c.id.desc())).first()
        lead = session.get(Lead, sent.lead_id) if sent is not None else None
        if lead is not None:
            return lead, sent, "in-reply-to"
    try:
        address = normalize_email(mail.sender or "")
    except ContactError:
        return None, None, None
    lead = by_contact(session, "email", address)
    return lead, None, "sender" if lead is not None else None


def text(
    session: Session,
    sender: str,
    body: str,
    now: datetime,
    channel: str,
    rules: LeadRules,
    funnel: str | None = None,
    name: str | None = None,
) -> Received:
    """An SMS or WhatsApp message by the sender's number: the lead's reply; from a number no
    lead has, a new lead through `funnel` (`name`: the sender's profile name), else a note for
    the coach. NotFound when the sender is no phone number."""
    number = consent.sender_number(sender, rules.phone_region)
    lead = by_contact(session, "phone", number)
    if lead is not None:
        result = consent.inbound(session, lead, now, body, channel)
        return Received.reply(f"lead {lead.id} replied", result, "sender")
    stop = body.strip().lower().replace(" ", "") in consent.STOP_WORDS
    if stop:
        return Received("unknown", f"{number} (no lead) asked to stop: no lead made")
    if funnel is None:
        why = "No lead has this number: set [twilio] inbound_funnel to make such senders leads."
        replies.unknown_sender(session, number, channel, body, now, why)
        return Received("unknown", f"no lead with phone {number}: the coach is told")
    try:
        find_funnel(session, funnel)
    except NotFound as error:
        why = f"No lead made: [twilio] inbound_funnel names no funnel ({error})."
        replies.unknown_sender(session, number, channel, body, now, why)
        return Received("unknown", f"no lead with phone {number}: {error}")
    made = (name or "").strip()[:200] or number
    data = LeadInput(name=made, phone=number, source=channel)
    arrived = ingest.ingest(session, data, funnel, now, rules)
    lead = session.get_one(Lead, arrived.lead_id)
    if not arrived.created:  # another message made the lead meanwhile: this one is a reply
        result = consent.inbound(session, lead, now, body, channel)
        return Received.reply(f"lead {lead.id} replied", result, "sender")
    result = consent.inbound(session, lead, now, body, channel, first=funnel)
    where = f"enrolled in {arrived.sequence}" if arrived.sequence else arrived.reason
    return Received.reply(f"new lead {lead.id} from funnel {funnel}: {where}", result, "new")


@dataclass
class Polled:
    """What one look at the mailbox found: how many emails of each outcome, and the messages
    that are no email (marked seen all the same: they will not read better next time)."""

    outcomes: Counter[str] = field(default_factory=Counter)
    unreadable: list[str] = field(default_factory=list)

    @property
    def replies(self) -> int:
        return self.outcomes["reply"]


def read_mailbox(store: Store, config: ImapConfig, now: datetime) -> Polled:
    """Receive every unseen email of the mailbox, each in its own transaction, and mark it seen
    once that is committed (a store failure leaves it unseen for the next look); ChannelError
    when the mailbox cannot be reached or read."""
    polled = Polled()
    with ImapMailbox(config) as mailbox:
        for uid, raw in mailbox.unseen():
            try:
                with store.session(immediate=True) as session:
                    polled.outcomes[email(session, raw, now).outcome] += 1
            except IntegrityError:  # the same email, received at this moment elsewhere
                polled.outcomes["repeat"] += 1
            except StoreError:
                raise
            except NurtureError as error:
                polled.unreadable.append(f"message {uid}: {error}")
            mailbox.seen(uid)
    return polled
