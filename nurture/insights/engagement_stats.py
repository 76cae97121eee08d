"""Engagement figures: per step, how many of its messages were delivered, read, clicked,
opened, replied to or bounced (each message once per kind) and those as shares of the messages
sent; per sequence, the share of its enrollments whose lead engaged (read, opened, clicked,
replied or converted). Grouped in SQL over ix_engagement_event_steps."""

from typing import Any

from sqlalchemy import Connection, func, select
from sqlmodel import col

from nurture.insights import stats  # its `rate`, read at call time (stats imports this module)
from nurture.rules.engagement import ENGAGED
from nurture.rules.periods import Window
from nurture.spec.actions import MESSAGE_ACTIONS
from nurture.store.tables import EngagementEvent, Enrollment, Lead

event = EngagementEvent.__table__
enrollment = Enrollment.__table__
STEP_KINDS = ("delivered", "read", "clicked", "opened", "replied", "bounced")
ON_ENROLLMENT = event.join(enrollment, enrollment.c.id == event.c.enrollment_id)


def step_counts(
    connection: Connection,
    sequence_id: int,
    window: Window,
    *,
    by_version: bool = False,
    funnel_id: int | None = None,
) -> dict[tuple, dict[str, int]]:
    """(version or None, step id) -> messages with at least one event of each kind."""
    keys = [enrollment.c.version] if by_version else []
    where = (event.c.sequence_id == sequence_id) & window.of(event.c.at)
    where &= event.c.step_id.is_not(None)
    if funnel_id is not None:
        where &= event.c.lead_id.in_(select(col(Lead.id)).where(col(Lead.funnel_id) == funnel_id))
    groups = [event.c.step_id, event.c.kind, *keys]
    query = select(*groups, func.count(event.c.execution_id.distinct()).label("messages"))
    if by_version:
        query = query.select_from(ON_ENROLLMENT)
    found: dict[tuple, dict[str, int]] = {}
    for row in connection.execute(query.where(where).group_by(*groups)):
        key = (row.version if by_version else None, row.step_id)
        found.setdefault(key, {})[row.kind] = row.messages
    return found


def with_step_engagement(rows: list[dict[str, Any]], counts: dict[tuple, dict[str, int]]) -> None:
    """Each step row gets its engagement counts and their rates over the messages it sent."""
    for row in rows:
        found = counts.get((row.get("version"), row["step_id"]), {})
        sends = row.get("action_type") in MESSAGE_ACTIONS or row.get("action_type") is None
        for kind in STEP_KINDS:
            row[kind] = found.get(kind, 0)
            row[f"{kind}_rate"] = stats.rate(row[kind], row["succeeded"]) if sends else None


def engaged_enrollments(connection: Connection, keys: list[Any], where: Any) -> dict[tuple, int]:
    """Per sequence (and version): enrollments `where` picks whose lead engaged."""
    groups = [enrollment.c.sequence_id, *keys[1:]]
    query = (
        select(*groups, func.count(event.c.enrollment_id.distinct()))
        .select_from(ON_ENROLLMENT)
        .where(where & event.c.kind.in_(ENGAGED))
        .group_by(*groups)
    )
    return {tuple(row[:-1]): row[-1] for row in connection.execute(query)}
