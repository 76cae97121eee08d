"""Frequency caps in the engine: a batch's messages counted against each lead's cap ledger.

    with store.begin(immediate=True) as connection:
        caps.hold(connection, jobs, config.caps, now, zone)

After a batch is decided and before anything is sent, one short transaction locks the ledger
rows of the leads the batch messages (nurture.store.caps), defers each message the caps do
not allow yet (to the first moment they do, fitted to its send window: it is never dropped,
and it is sent once, when it goes) and counts the others. A message counts from then on,
whatever its send gives; the retry of a step is not counted twice. Without caps nothing here
runs.
"""

from datetime import UTC, datetime

from sqlalchemy import Connection

from nurture.engine.complete import Job
from nurture.rules.caps import Caps, Hold, Sent, shown
from nurture.rules.schedule import fit_window
from nurture.store import caps as ledger


def counted(jobs: list[Job], caps: Caps) -> list[Job]:
    """The batch's messages the caps count (fresh ones, about to be sent)."""
    return [job for job in jobs if job.status == "done" and caps.counts(job.channel)]


def hold(connection: Connection, jobs: list[Job], caps: Caps, now: datetime, zone: str) -> int:
    """Defer the messages of `jobs` the caps do not allow at `now`, count the rest; how many
    were deferred. Jobs are taken in claim order: the step due first goes first."""
    messages = counted(jobs, caps)
    if not messages:
        return 0
    entries = ledger.lock(connection, (job.claim.lead_id for job in messages))
    sent = {lead: [_sent(entry) for entry in rows] for lead, rows in entries.items()}
    changed: set[int] = set()
    deferred = 0
    for job in messages:
        lead, channel = job.claim.lead_id, job.channel or ""
        own = [e for e in sent[lead] if (e.enrollment, e.step) == (job.claim.id, job.step_id)]
        others = [e for e in sent[lead] if e not in own]
        held = caps.hold(others, channel, now)
        if held is not None:
            defer(job, held, zone)
            deferred += 1
        elif not own:  # an earlier attempt of this step counted already
            sequence = job.sequence.name if job.sequence else job.spec.name
            sent[lead].append(Sent(now, channel, job.claim.id, job.step_id, sequence))
            changed.add(lead)
    ledger.write(
        connection, {lead: [_entry(e) for e in caps.kept(sent[lead], now)] for lead in changed}
    )
    return deferred


def defer(job: Job, held: Hold, zone: str) -> None:
    """The job waits for the moment `held` names, fitted to its sequence's send window."""
    slot = fit_window(held.until, job.spec.send_window, job.lead.timezone, zone)
    job.status, job.message, job.effect = "deferred", None, None
    job.deferred_until = slot.at
    job.error = f"deferred: {held.reason}; next allowed {shown(slot.at)}"


def _sent(entry: list) -> Sent:
    at, channel, enrollment, step, sequence = entry
    return Sent(datetime.fromtimestamp(at, UTC), channel, enrollment, step, sequence)


def _entry(sent: Sent) -> list:
    return [sent.at.timestamp(), sent.channel, sent.enrollment, sent.step, sent.sequence]
