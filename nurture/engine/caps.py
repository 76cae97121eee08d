"""Frequency caps in the engine: a batch's messages counted against each lead's cap ledger.

    caps.hold(connection, jobs, config.caps, now, zone)   # in the claim's transaction

With caps, a batch is decided (what each step sends) in its claim's transaction, and before
the commit the ledger rows of the leads it messages are locked (nurture.store.caps: a lead
without a row yet gets one; on Postgres a row that allows the lead's one message gets it
appended by the same statement; the other rows, and one another daemon made meanwhile, are
read and decided again on what they hold). Each message the caps do not allow yet is deferred to the first
moment they do, fitted to its send window: it is never dropped, and it is sent once, when it
goes. The others are counted. Nothing is sent before the commit, so a message counts from
then on, whatever its send gives; the retry of a step is not counted twice. Without caps
nothing here runs, and the batch is decided after its claim commits.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from sqlalchemy import Connection

from nurture.engine.complete import Job
from nurture.rules.caps import Caps, Hold, Sent, shown
from nurture.rules.schedule import fit_window
from nurture.store import caps as ledger


def counted(jobs: list[Job], caps: Caps) -> list[Job]:
    """The batch's messages the caps count (fresh ones, about to be sent)."""
    return [job for job in jobs if job.status == "done" and caps.counts(job.channel)]


def hold(connection: Connection, jobs: list[Job], caps: Caps, now: datetime, zone: str) -> int:
    """Defer the messages of the decided `jobs` the caps do not allow at `now`, count the rest;
    how many were deferred. A lead's are taken in claim order: the step due first goes first."""
    by_lead: dict[int, list[Job]] = {}
    for job in counted(jobs, caps):
        by_lead.setdefault(job.claim.lead_id, []).append(job)
    if not by_lead:
        return 0
    clock = _Clock(now, now.timestamp(), (now - caps.horizon).timestamp())
    blank = {lead: _plan(mine, [], caps, clock) for lead, mine in by_lead.items()}
    gap = caps.min_gap.total_seconds() if caps.min_gap is not None else None
    counting = ledger.Counting(clock.stamp, clock.cutoff, gap, caps.limits)
    several = [lead for lead, mine in by_lead.items() if len(mine) > 1]
    first = {lead: plan.entries for lead, plan in blank.items()}
    found = ledger.take(connection, first, counting, several)
    again = {lead: _plan(by_lead[lead], sent, caps, clock) for lead, sent in found.items()}
    plans = blank | again
    changed = {lead: p.entries for lead, p in plans.items() if lead in found and p.changed}
    ledger.write(connection, changed)
    held = [(job, why) for plan in plans.values() for job, why in plan.holds]
    for job, why in held:
        defer(job, why, zone)
    return len(held)


class _Clock(NamedTuple):
    now: datetime
    stamp: float  # now, in seconds since the epoch (as entries keep it)
    cutoff: float  # entries this old or older count no more


@dataclass
class _Plan:
    """What the caps make of one lead's messages: those that wait, and its ledger after."""

    holds: Sequence[tuple[Job, Hold]]
    entries: list[ledger.Entry]
    changed: bool


NO_HOLDS: Sequence[tuple[Job, Hold]] = ()


def _plan(jobs: list[Job], entries: list[ledger.Entry], caps: Caps, clock: _Clock) -> _Plan:
    """The lead's messages against its entries (kept raw: most leads have none that count)."""
    if not entries and len(jobs) == 1:  # the common case: nothing to hold it, one to count
        return _Plan(NO_HOLDS, [_entry(jobs[0], clock)], True)
    recent = [entry for entry in entries if entry[0] > clock.cutoff]
    holds: list[tuple[Job, Hold]] = []
    changed = len(recent) != len(entries)
    for job in jobs:
        key = (job.claim.id, job.step_id)
        others = [entry for entry in recent if (entry[2], entry[3]) != key]
        channel = job.channel or ""
        why = (
            None
            if not others or caps.allows(others, channel, clock.stamp)
            else caps.hold([_sent(e) for e in others], channel, clock.now)
        )
        if why is not None:
            holds.append((job, why))
        elif len(others) == len(recent):  # else an earlier attempt of this step counted already
            recent.append(_entry(job, clock))
            changed = True
    return _Plan(holds, recent, changed)


def defer(job: Job, held: Hold, zone: str) -> None:
    """The job waits for the moment `held` names, fitted to its sequence's send window."""
    slot = fit_window(held.until, job.spec.send_window, job.lead.timezone, zone)
    job.status, job.message, job.effect = "deferred", None, None
    job.deferred_until = slot.at
    job.error = f"deferred: {held.reason}; next allowed {shown(slot.at)}"


def _sent(entry: ledger.Entry) -> Sent:
    at, channel, enrollment, step, sequence = entry
    return Sent(datetime.fromtimestamp(at, UTC), channel, enrollment, step, sequence)


def _entry(job: Job, clock: _Clock) -> ledger.Entry:
    sequence = job.sequence.name if job.sequence else job.spec.name
    return [clock.stamp, job.channel, job.claim.id, job.step_id, sequence]
