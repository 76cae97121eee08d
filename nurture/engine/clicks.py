"""A tracked link clicked, an open pixel fetched: the token read, the event recorded once, and
link scanners told apart from leads where they can be.

A mail system's link scanner (Microsoft Defender's Safe Links, Proofpoint, Mimecast,
Barracuda), a chat app's link preview or a crawler fetches links no one clicked. They are
recognised, where they can be, and not counted (they still get the redirect): a HEAD request,
a known scanner's user agent, and a click within `scanner_seconds` of the message going out.
"""

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Row, select

from nurture.errors import NotFound
from nurture.leads import engagement
from nurture.leads.engagement import Happened
from nurture.rules import links
from nurture.store.tables import Execution

execution = Execution.__table__
SCANNERS = re.compile(
    r"bot\b|bot/|crawler|spider|scanner|preview|slurp|facebookexternalhit|whatsapp|"
    r"skypeuripreview|safelinks|proofpoint|mimecast|barracuda|forcepoint|symantec|"
    r"trendmicro|headlesschrome|phantomjs|python-requests|python-urllib|go-http-client|"
    r"curl/|wget/|libwww|httpclient|okhttp|java/",
    re.I,
)


@dataclass(frozen=True)
class Visit:
    """A request for a tracked link or pixel: how, from whom, when."""

    token: str
    at: datetime
    method: str = "GET"
    user_agent: str = ""


@dataclass(frozen=True)
class Outcome:
    """Where the link leads, and whether the visit counted (else why not)."""

    url: str | None
    counted: bool
    reason: str | None = None


def scanner(visit: Visit, sent_at: datetime | None, within: float) -> str | None:
    """Why the visit looks like a scanner's or a prefetch, not the lead's; None when it does not."""
    if visit.method.upper() == "HEAD":
        return "a HEAD request (a link checker)"
    if SCANNERS.search(visit.user_agent or ""):
        return f"a scanner's user agent ({visit.user_agent[:60]})"
    if sent_at is not None and visit.at - sent_at < timedelta(seconds=within):
        return f"within {within:g}s of the message going out (a link scanner)"
    return None


def _execution(connection: Connection, target: links.Target) -> Row:
    c = execution.c
    query = select(
        c.id,
        c.lead_id,
        c.enrollment_id,
        c.sequence_id,
        c.step_id,
        c.detail,
        c.started_at,
        c.finished_at,
    ).where(
        c.enrollment_id == target.enrollment_id,
        c.step_id == target.step_id,
        c.attempt == target.attempt,
    )
    found = connection.execute(query).first()
    if found is None:
        raise NotFound("the link's message is not in this project's log")
    return found


def click(connection: Connection, secret: str, visit: Visit, within: float) -> Outcome:
    """The target of a tracked link; its click recorded once per lead and link, unless a scanner's."""
    target = links.read_token(secret, visit.token)
    sent = _execution(connection, target)
    urls = (sent.detail or {}).get("links") or []
    index = target.link_index
    if index is None or not 0 <= index < len(urls):
        raise NotFound("the link is not one of its message's links")
    url = urls[index]
    why = scanner(visit, sent.finished_at or sent.started_at, within)
    if why is not None:
        return Outcome(url, False, why)
    key = f"clicked:{sent.id}:{index}"
    detail = {"user_agent": visit.user_agent[:200]} if visit.user_agent else None
    new = engagement.record(
        connection, Happened(sent.lead_id, "clicked", visit.at, key, sent, url, detail)
    )
    return Outcome(url, new, None if new else "clicked before")


def opened(connection: Connection, secret: str, visit: Visit) -> Outcome:
    """An email's open pixel fetched: its open recorded once, unless a scanner fetched it."""
    target = links.read_token(secret, visit.token)
    if target.link_index is not None:
        raise NotFound("not an open pixel's token")
    sent = _execution(connection, target)
    why = scanner(visit, None, 0)
    if why is not None:
        return Outcome(None, False, why)
    happened = Happened(sent.lead_id, "opened", visit.at, f"opened:{sent.id}", sent)
    new = engagement.record(connection, happened)
    return Outcome(None, new, None if new else "opened before")
