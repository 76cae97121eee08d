"""Known histories for the stats tests, played by the engine on an injected clock.

Welcome (3 steps, 6 leads enrolled at T0):
    hello (sms, at once)  tip (email, +2h)  nudge (sms, +1d, not for tags: client)
    Ann   sent           sent              sent                   completed after 26h
    Ben   sent           sent              skipped (client)       completed after 26h
    Cat   sent           -                 -                      converted at +1h
    Dan   sent           failed (no email) sent                   completed after 26h
    Eve   skipped (opted out of sms), sent, skipped (opted out)   completed after 26h
    Fay   retry, sent at +10m; sent at +2h10m; sent at +1d3h (50m late)  completed after 27h
Short (1 step): Gil and Hal at T0 (run at once), Ivy at +1h (run at +2h), Jo at +1d (run at +1d2h).
"""

from datetime import timedelta
from pathlib import Path

from builders import sequence, step
from enrolling import T0, apply, drain, enroll, lead_of

from nurture.channels import OutgoingMessage, TemporaryFailure
from nurture.channels.memory import MemoryChannel
from nurture.leads.records import LeadRules, convert
from nurture.store.db import Store
from nurture.store.tables import Lead

FAY_PHONE = "+15555550199"
DRAINS = [
    timedelta(0),
    timedelta(minutes=10),
    timedelta(hours=2),
    timedelta(hours=2, minutes=10),
    timedelta(days=1, hours=2),
    timedelta(days=1, hours=3),
]


def welcome() -> dict:
    nudge = step("Nudge", delay_days=1, conditions={"not_tags": ["client"]})
    return sequence(
        "Welcome",
        step("Hello"),
        step("Tip", "send_email", delay_hours=2),
        nudge,
        max_retries=2,
        retry_delay="10m",
    )


def fay_fails_once(message: OutgoingMessage) -> None:
    if message.recipient == FAY_PHONE and message.key.endswith(":hello:1"):
        raise TemporaryFailure("rate limited")


def build(store: Store, project: Path) -> dict[str, int]:
    """Play the history above; the enrollment ids by lead name."""
    apply(store, project, welcome(), sequence("Short", step("Ping")))
    ids = {
        "Ann": enroll(store, "Welcome", name="Ann Lee"),
        "Ben": enroll(store, "Welcome", name="Ben Ode", tags=["client"]),
        "Cat": enroll(store, "Welcome", name="Cat Ruiz"),
        "Dan": enroll(store, "Welcome", name="Dan Poe", email=None),
        "Eve": enroll(store, "Welcome", name="Eve Sol", opted_out=["sms"]),
        "Fay": enroll(store, "Welcome", name="Fay Kim", phone=FAY_PHONE),
        "Gil": enroll(store, "Short", name="Gil Ash"),
        "Hal": enroll(store, "Short", name="Hal Ash"),
        "Ivy": enroll(store, "Short", now=T0 + timedelta(hours=1), name="Ivy Ash"),
        "Jo": enroll(store, "Short", now=T0 + timedelta(days=1), name="Jo Ash"),
    }
    channel = MemoryChannel(behaviour=fay_fails_once)
    for offset in DRAINS:
        if offset == timedelta(hours=2):
            _convert(store, lead_of(store, ids["Cat"]).id, T0 + timedelta(hours=1))
        drain(store, T0 + offset, channel)
    return ids


def _convert(store: Store, lead_id: int, now) -> None:  # noqa: ANN001
    with store.session(immediate=True) as session:
        convert(session, session.get(Lead, lead_id), now, LeadRules())


def moved(store: Store, project: Path) -> None:
    """v1 hello, guide, bye: Old 0 finishes it; Old 1 is in flight at guide when v2 (hello,
    tip, bye: guide removed, tip new) lands and moves there; New 0 and New 1 start on v2."""
    v1 = sequence("Offer", step("Hello"), step("Guide", delay_hours=1), step("Bye", delay_hours=1))
    apply(store, project, v1)
    enroll(store, "Offer", name="Old 0")
    for hours in range(3):
        drain(store, T0 + timedelta(hours=hours))
    enroll(store, "Offer", now=T0 + timedelta(hours=3), name="Old 1")
    drain(store, T0 + timedelta(hours=3))  # hello, on v1
    v2 = sequence("Offer", step("Hello"), step("Tip", delay_hours=1), step("Bye", delay_hours=1))
    apply(store, project, v2, now=T0 + timedelta(hours=3, minutes=30))
    later = T0 + timedelta(days=1)
    for n in range(2):
        enroll(store, "Offer", now=later, name=f"New {n}")
    for hours in range(3):
        drain(store, later + timedelta(hours=hours))
