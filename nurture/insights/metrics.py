"""The figures `/metrics` exports, each one SQL aggregate over the store."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, select
from sqlmodel import col

from nurture.insights.status import daemon_status
from nurture.store.tables import Execution, Lead


@dataclass(frozen=True)
class Figures:
    leads: int
    enrollments: dict[str, int]
    executions: dict[str, int]
    due: int
    lag_seconds: float
    workers_alive: int


def figures(connection: Connection, now: datetime) -> Figures:
    """Leads stored, enrollments by status, executions by result, the due backlog and its lag."""
    status = daemon_status(connection, now)
    leads = connection.execute(select(func.count()).select_from(Lead)).scalar_one()
    executions = dict(
        connection.execute(
            select(col(Execution.status), func.count()).group_by(col(Execution.status))
        ).all()
    )
    return Figures(
        leads=leads,
        enrollments=status["enrollments"],
        executions=executions,
        due=status["due"],
        lag_seconds=status["lag_seconds"],
        workers_alive=sum(1 for worker in status["workers"] if worker["alive"]),
    )
