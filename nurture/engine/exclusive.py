"""Exclusive sequences: a lead runs at most one at a time (`exclusive: true`).

Among a lead's enrollments that are still live (active, running, paused, unknown) in exclusive
sequences, the one of highest priority runs, then the first enrolled; a claimed step of any
other waits (its re-entry policy lets the lead come back: after_exit, always) or ends the
enrollment (re_entry never). Every daemon reaches the same winner from the store alone, so
two never run two exclusive sequences of one lead at once. Read in the claim's transaction,
only when the batch has a step of an exclusive sequence.
"""

from datetime import datetime, timedelta

from sqlalchemy import Connection

from nurture.engine.complete import Job
from nurture.rules import steps
from nurture.spec.models import SequenceSpec
from nurture.store import batch, queries

RECHECK = timedelta(minutes=15)
"""A waiting step looks again this soon when the winner is running now."""
LONGEST_WAIT = timedelta(days=1)
"""…and at least daily (a command may stop the winner before its next step)."""


def place(connection: Connection, url: str, jobs: list[Job], now: datetime) -> None:
    """Hold, or end, the fresh steps of enrollments another exclusive sequence of the lead beats."""
    mine = [job for job in jobs if job.status == "done" and job.spec.exclusive]
    if not mine:
        return

    def spec(sequence_id: int, version: int) -> SequenceSpec:
        load = lambda s, v: batch.definition(connection, s, v)  # noqa: E731
        return steps.cached_spec(url, sequence_id, version, load)

    live = queries.live_enrollments(connection, {job.claim.lead_id for job in mine})
    for job in mine:
        rivals = [
            (row, spec(row.sequence_id, row.current_version))
            for row in live.get(job.claim.lead_id, [])
        ]
        winner = _winner(job, [(row, rival) for row, rival in rivals if rival.exclusive])
        if winner is not None:
            _lose(job, *winner, now)


Rival = tuple[queries.Live, SequenceSpec]


def _winner(job: Job, rivals: list[Rival]) -> Rival | None:
    """The exclusive enrollment of the lead that beats the job's, if one does."""
    best, rank = None, (-job.spec.priority, job.claim.id)
    for row, rival in rivals:
        if (-rival.priority, row.id) < rank:
            best, rank = (row, rival), (-rival.priority, row.id)
    return best


def _lose(job: Job, winner: queries.Live, rival: SequenceSpec, now: datetime) -> None:
    why = f"the lead is in exclusive sequence {rival.name!r} (priority {rival.priority})"
    if job.spec.re_entry == "never":
        job.status, job.error = "excluded", f"skipped: {why}; re_entry never"
        return
    until = now + RECHECK
    if winner.status == "active" and winner.next_run_at is not None and winner.next_run_at > now:
        until = min(winner.next_run_at, now + LONGEST_WAIT)
    job.status, job.deferred_until = "deferred", until
    job.error = f"waiting: {why}; looks again at {until:%Y-%m-%d %H:%M} UTC"
