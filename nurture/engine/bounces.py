"""Bounces recorded: each report's message found in the log (by its Message-ID, else the last
email to the recipient), a `bounced` event once per message, and a hard bounce's address
marked undeliverable (the lead is opted out of email, from source `bounce`: no more email goes
to an address that refuses it, and `leads opt-in` undoes it once the address is fixed)."""

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, Row, select, update

from nurture.leads import consent, engagement
from nurture.leads.engagement import Happened
from nurture.rules.bounces import Bounce, Report
from nurture.rules.contacts import ContactError, normalize_email
from nurture.store.tables import Execution, Lead

execution, lead = Execution.__table__, Lead.__table__
COLUMNS = tuple(execution.c[name] for name in ("id", "lead_id", "enrollment_id", "sequence_id"))
COLUMNS += (execution.c.step_id,)


@dataclass
class Tally:
    """What a mailbox of reports came to."""

    recorded: int = 0
    hard: int = 0
    repeated: int = 0
    unmatched: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def record_reports(connection: Connection, reports: list[Report], now: datetime) -> Tally:
    """Record every bounce of the reports."""
    tally = Tally()
    for report in reports:
        if report.problem:
            tally.skipped.append(f"{report.subject or '(no subject)'}: {report.problem}")
        for bounce in report.bounces:
            _record(connection, bounce, now, tally)
    return tally


def _record(connection: Connection, bounce: Bounce, now: datetime, tally: Tally) -> None:
    if bounce.action != "failed":
        return  # delayed (still being tried), delivered, relayed, expanded: not a bounce
    sent = _sent(connection, bounce)
    if sent is None:
        tally.unmatched.append(bounce.message_id or bounce.recipient or "(no address)")
        return
    detail = {"hard": bounce.hard, "status": bounce.status, "action": bounce.action}
    detail |= {"recipient": bounce.recipient, "diagnostic": bounce.diagnostic}
    key = (
        f"bounced:{sent.id}" if bounce.action == "failed" else f"delayed:{sent.id}:{bounce.status}"
    )
    if not engagement.record(
        connection, Happened(sent.lead_id, "bounced", now, key, sent, detail=detail)
    ):
        tally.repeated += 1
        return
    tally.recorded += 1
    error = f"bounced {bounce.status}: {bounce.diagnostic or 'no diagnostic'}"[:500]
    connection.execute(
        update(execution)
        .where(execution.c.id == sent.id)
        .values(delivery_status="undelivered", delivery_error=error, delivery_updated_at=now)
    )
    if bounce.hard:
        tally.hard += 1
        why = f"hard bounce {bounce.status}: {bounce.diagnostic or 'the address refuses mail'}"
        consent.opt_out_many(connection, [(sent.lead_id, "email")], now, "bounce", why[:500])


def _sent(connection: Connection, bounce: Bounce) -> Row | None:
    """The email that bounced: by its Message-ID, else the last email sent to the recipient."""
    if bounce.message_id:
        query = select(*COLUMNS).where(execution.c.provider_id == bounce.message_id)
        found = connection.execute(query.order_by(execution.c.id.desc()).limit(1)).first()
        if found is not None:
            return found
    try:
        address = normalize_email(bounce.recipient or "")
    except ContactError:
        return None
    query = (
        select(*COLUMNS)
        .join(lead, lead.c.id == execution.c.lead_id)
        .where(lead.c.email == address, execution.c.action_type == "send_email")
        .where(execution.c.status == "sent")
    )
    return connection.execute(query.order_by(execution.c.id.desc()).limit(1)).first()
