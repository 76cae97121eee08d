"""What a batch's engagement conditions and waits read: the leads' events, read only for the
steps that ask (a step without engagement conditions costs nothing more), and tracked links."""

from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from nurture.channels import OutgoingMessage
from nurture.engine.complete import Job
from nurture.engine.config import Tracking
from nurture.engine.control import CONTROL_STEP
from nurture.rules import links
from nurture.rules.engagement import WAITED, Engagement, Event, Scoring
from nurture.spec.models import SequenceSpec
from nurture.spec.steps import AnyStep
from nurture.store import bulk
from nurture.store.tables import EngagementEvent, Enrollment, Execution

event_table, enrollment, execution = (
    EngagementEvent.__table__,
    Enrollment.__table__,
    Execution.__table__,
)


def asks(step: AnyStep | None) -> bool:
    """Whether the step's conditions or its wait read the lead's engagement."""
    if step is None:
        return False
    conditions = step.conditions
    return bool(conditions and conditions.engagement()) or step.field_value("wait_for") is not None


def load(connection: Connection, jobs: list[Job], now: datetime, scoring: Scoring) -> None:
    """Give each job whose step asks its lead's events (and a wait, when its wait began)."""
    asking = [job for job in jobs if job.status == "done" and asks(job.step)]
    if not asking:
        return
    events = _events(connection, {job.claim.lead_id for job in asking})
    ids = [job.claim.id for job in asking]
    starts = dict(
        connection.execute(
            select(enrollment.c.id, enrollment.c.enrolled_at).where(
                bulk.among(connection, enrollment.c.id, ids)
            )
        ).all()
    )
    last = _last_finished(
        connection, [j.claim.id for j in asking if j.step and j.step.field_value("wait_for")]
    )
    for job in asking:
        since = starts.get(job.claim.id)
        job.engagement = Engagement(
            tuple(events.get(job.claim.lead_id, ())), now, job.claim.id, since, scoring
        )
        job.waited_since = last.get(job.claim.id) or since


def _events(connection: Connection, lead_ids: set[int]) -> dict[int, list[Event]]:
    c = event_table.c
    query = (
        select(c.lead_id, c.kind, c.at, c.step_id, c.enrollment_id)
        .where(bulk.among(connection, c.lead_id, lead_ids))
        .order_by(c.lead_id, c.at)
    )
    found: dict[int, list[Event]] = {}
    for row in connection.execute(query):
        found.setdefault(row.lead_id, []).append(
            Event(row.kind, row.at, row.step_id, row.enrollment_id)
        )
    return found


def _last_finished(connection: Connection, ids: list[int]) -> dict[int, datetime]:
    """When each enrollment's last step finished: the wait it is on began then."""
    if not ids:
        return {}
    c = execution.c
    query = (
        select(c.enrollment_id, func.max(c.finished_at))
        .where(bulk.among(connection, c.enrollment_id, ids), c.step_id != CONTROL_STEP)
        .group_by(c.enrollment_id)
    )
    return {row[0]: row[1] for row in connection.execute(query) if row[1] is not None}


def waited(job: Job, step: Any) -> None:
    """A wait for an event ends: note whether the event came (and when)."""
    wait_for = step.wait_for
    engagement = job.engagement or Engagement()
    since = job.waited_since or job.claim.next_run_at
    came = engagement.came(WAITED[wait_for.event], since)
    job.note(wait_for=wait_for.event, came=came is not None)
    if came is not None:
        job.note(came_at=came.at.isoformat())


def tracker(tracking: Tracking | None, job: Job) -> links.Tracker | None:
    """The tracked links of the job's message, when links are tracked."""
    if tracking is None:
        return None
    return links.Tracker(tracking.secret, tracking.base_url, job.key)


def tracked(
    message: OutgoingMessage,
    spec: SequenceSpec,
    track: links.Tracker,
    tracking: Tracking,
    job: Job,
) -> OutgoingMessage:
    """The message with its links tracked (every web address under `track_links`), the open
    pixel in an HTML email where it is on; the links it tracks kept with the job."""
    if spec.track_links and message.channel != "notification":
        message = replace(
            message,
            body=links.rewrite_text(message.body, track),
            html=links.rewrite_html(message.html, track) if message.html else None,
        )
    if tracking.open_pixel and message.channel == "email" and message.html:
        message = replace(message, html=links.with_pixel(message.html, track.pixel()))
    if track.urls:
        job.note(links=list(track.urls))
    return message
