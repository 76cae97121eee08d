"""Appointments per sequence for `nurture stats` and the report: offered, booked, what became of
them, and the show rate (attended of those whose outcome is known)."""

from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from nurture.insights.stats import rate, sequence_names
from nurture.rules.periods import Window
from nurture.store.tables import Appointment, Enrollment

STATUSES = ("offered", "booked", "attended", "no_show", "cancelled", "unbooked", "conflict")


def appointment_figures(session: Session, window: Window) -> list[dict[str, Any]]:
    """Per sequence, appointments made in the window by status, and the show rate."""
    table, enrollment = Appointment.__table__, Enrollment.__table__
    query = (
        select(enrollment.c.sequence_id, table.c.status, func.count())
        .join(enrollment, enrollment.c.id == table.c.enrollment_id)
        .where(window.of(table.c.created_at))
        .group_by(enrollment.c.sequence_id, table.c.status)
    )
    connection = session.connection()
    counts: dict[int, dict[str, int]] = {}
    for sequence_id, status, count in connection.execute(query):
        counts.setdefault(sequence_id, dict.fromkeys(STATUSES, 0))[status] = count
    names = sequence_names(connection)
    rows = [_row(names[sequence_id][0], found) for sequence_id, found in counts.items()]
    return sorted(rows, key=lambda row: row["sequence"].casefold())


def _row(name: str, found: dict[str, int]) -> dict[str, Any]:
    known = found["attended"] + found["no_show"]
    return {"sequence": name, **found, "show_rate": rate(found["attended"], known)}
