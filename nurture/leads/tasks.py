"""What steps leave for people: follow-up tasks, notifications for the coach."""

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from nurture.errors import NotFound
from nurture.store.tables import Lead, Notification, Task


def list_tasks(
    session: Session, *, done: bool = False, limit: int | None = None
) -> list[dict[str, Any]]:
    """Open tasks (or every task with `done`), soonest due first (the first `limit`)."""
    query = select(Task, Lead.name).join(Lead, col(Lead.id) == Task.lead_id)
    if not done:
        query = query.where(col(Task.done_at).is_(None))
    query = query.order_by(col(Task.due_at).is_(None), col(Task.due_at), col(Task.id))
    query = query.limit(limit) if limit is not None else query
    return [task.model_dump() | {"lead": lead} for task, lead in session.exec(query)]


def task_row(session: Session, task: Task) -> dict[str, Any]:
    """One task as `list_tasks` shows it."""
    lead = session.get(Lead, task.lead_id)
    return task.model_dump() | {"lead": lead.name if lead else None}


def finish_task(session: Session, task_id: int, now: datetime) -> tuple[Task, bool]:
    """Mark a task done; whether it was open (done again: nothing changes)."""
    task = session.get(Task, task_id)
    if task is None:
        raise NotFound(f"no task {task_id}")
    was_open = task.done_at is None
    task.done_at = task.done_at or now
    session.add(task)
    return task, was_open


def list_notifications(
    session: Session, limit: int | None = None, after: int = 0
) -> list[dict[str, Any]]:
    """Every notification (the newest `limit`, those after notification `after`), newest first."""
    query = select(Notification, Lead.name).outerjoin(Lead, col(Lead.id) == Notification.lead_id)
    query = query.where(col(Notification.id) > after).order_by(col(Notification.id).desc())
    rows = session.exec(query.limit(limit) if limit is not None else query)
    return [notification.model_dump() | {"lead": lead} for notification, lead in rows]
