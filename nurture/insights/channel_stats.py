"""Figures per channel (messages sent, failed, opted out; by day) and failures by reason.

They read every message execution in the window (over ix_execution_channel), so `nurture stats`
shows them when asked (`--by channel`, `--by day`) and the HTML report always.
"""

from typing import Any

from sqlalchemy import ColumnElement, case, func, select
from sqlmodel import Session

from nurture.rules.periods import Window
from nurture.store.aggregates import count_where, day, reason
from nurture.store.tables import Execution

execution = Execution.__table__
CHANNEL_OF_ACTION = {
    "send_whatsapp_message": "whatsapp",
    "send_sms": "sms",
    "send_email": "email",
    "send_notification": "notification",
}
OPTED_OUT = "lead opted out of %"


def channel_expression() -> ColumnElement[str]:
    """The channel an execution's action sends through (NULL for actions that send nothing)."""
    action = execution.c.action_type
    return case(*((action == a, c) for a, c in CHANNEL_OF_ACTION.items()), else_=None)


def channel_figures(session: Session, window: Window) -> list[dict[str, Any]]:
    """Per channel: messages sent, failed (for good) and skipped as opted out, in total and by day."""
    connection = session.connection()
    dialect = connection.dialect.name
    channel, on = channel_expression().label("channel"), day(dialect, execution.c.started_at)
    where = window.of(execution.c.started_at) & execution.c.action_type.in_(CHANNEL_OF_ACTION)
    status = execution.c.status
    sent_failed = (
        select(
            channel,
            on.label("day"),
            count_where(status == "sent").label("sent"),
            count_where(status == "failed").label("failed"),
        )
        .where(where & status.in_(("sent", "failed")))
        .group_by(execution.c.action_type, on)
    )
    opted = (
        select(channel, on.label("day"), func.count().label("opted_out"))
        .where(where & (status == "skipped") & execution.c.error.like(OPTED_OUT))
        .group_by(execution.c.action_type, on)
    )
    days: dict[tuple[str, str], dict[str, int]] = {}
    for row in connection.execute(sent_failed):
        days[(row.channel, row.day)] = {"sent": row.sent, "failed": row.failed, "opted_out": 0}
    for opted_row in connection.execute(opted):
        key = (opted_row.channel, opted_row.day)
        slot = days.setdefault(key, {"sent": 0, "failed": 0, "opted_out": 0})
        slot["opted_out"] = opted_row.opted_out
    return _channel_rows(days)


def _channel_rows(days: dict[tuple[str, str], dict[str, int]]) -> list[dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for (channel, on), counts in sorted(days.items()):
        row = rows.setdefault(
            channel, {"channel": channel, "sent": 0, "failed": 0, "opted_out": 0, "by_day": []}
        )
        for key, value in counts.items():
            row[key] += value
        row["by_day"].append({"day": on} | counts)
    return list(rows.values())


def failures(session: Session, window: Window) -> list[dict[str, Any]]:
    """Failed executions (after their last retry) by channel (or action) and reason, most first."""
    connection = session.connection()
    why = reason(connection.dialect.name, execution.c.error)
    query = (
        select(execution.c.action_type, why.label("reason"), func.count().label("failed"))
        .where((execution.c.status == "failed") & window.of(execution.c.started_at))
        .group_by(execution.c.action_type, why)
    )
    rows = [
        {
            "channel": CHANNEL_OF_ACTION.get(row.action_type, row.action_type),
            "reason": row.reason or "(no message)",
            "failed": row.failed,
        }
        for row in connection.execute(query)
    ]
    return sorted(rows, key=lambda row: (-row["failed"], row["channel"], row["reason"]))
