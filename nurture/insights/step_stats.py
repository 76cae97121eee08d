"""Figures per step of one sequence (and per version): outcomes, attempts, lag, drop-off, reasons.

    rows = step_figures(session, sequence_id, Window(since=...))

A step's `reached` counts the leads that got to it (its first attempts, skips included); the
drop-off is each step's `reached` against the first step's. Success rate is succeeded over
succeeded and failed: a skipped step (conditions, opt-out) is neither.

By version, an execution counts under the version its enrollment is on, as the enrollment's
outcome does (an in-flight lead moved to v2 by `apply` is v2's, its earlier steps too): a
version never reaches more leads than it was assigned. Each version shows its own steps, in
the newest version's order; `removed` marks a step the newest version no longer has.
"""

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, func, literal_column, select
from sqlmodel import Session, col

from nurture.engine.control import CONTROL_STEP
from nurture.insights import engagement_stats
from nurture.insights.stats import SUCCEEDED, rate, top_reasons
from nurture.rules.periods import Window
from nurture.store.aggregates import count_where, seconds
from nurture.store.tables import Enrollment, Execution, Lead, SequenceVersion, Step

execution = Execution.__table__
enrollment = Enrollment.__table__
ON_ENROLLMENT = execution.join(enrollment, enrollment.c.id == execution.c.enrollment_id)
"""By version: each execution with the enrollment whose version it counts under."""
OUTCOMES = {"succeeded": SUCCEEDED, "failed": ("failed",), "skipped": ("skipped",)}
OUTCOMES |= {"retried": ("retry",), "unknown": ("unknown",)}


def step_figures(
    session: Session,
    sequence_id: int,
    window: Window,
    *,
    by_version: bool = False,
    funnel_id: int | None = None,
) -> list[dict[str, Any]]:
    """Each step of the sequence, in order, with its figures (per version: a `version` key too);
    `funnel_id` counts only the leads that came through that funnel."""
    connection = session.connection()
    where = (execution.c.sequence_id == sequence_id) & (execution.c.step_id != CONTROL_STEP)
    where &= window.of(execution.c.started_at)
    if funnel_id is not None:
        where &= execution.c.lead_id.in_(
            select(col(Lead.id)).where(col(Lead.funnel_id) == funnel_id)
        )
    keys = [enrollment.c.version] if by_version else []
    counted = _counts(connection, keys, where)
    reasons = _reasons(connection, keys, where)
    layout = (_versions_layout if by_version else _layout)(connection, sequence_id, counted)
    rows = [_step_row(step, counted.get(key), reasons.get(key, {})) for key, step in layout.items()]
    engaged = engagement_stats.step_counts(
        connection, sequence_id, window, by_version=by_version, funnel_id=funnel_id
    )
    engagement_stats.with_step_engagement(rows, engaged)
    return _with_dropoff(rows)


def _key(row: Any, by_version: bool) -> tuple:
    return (row.version, row.step_id) if by_version else (None, row.step_id)


@dataclass
class Counts:
    """A step's executions added up over the (status, step, version) groups SQL returns."""

    step_id: str
    reached: int = 0
    executed: int = 0
    attempts: int = 0  # summed over succeeded and failed executions
    tried: int = 0
    lag: float = 0.0
    lagged: int = 0
    by_status: dict[str, int] = field(default_factory=dict)

    def add(self, row: Any) -> None:
        self.reached += row.reached
        self.executed += row.executed
        if row.status in (*SUCCEEDED, "failed"):
            self.attempts, self.tried = self.attempts + row.attempts, self.tried + row.executed
        self.lag, self.lagged = self.lag + float(row.lag or 0.0), self.lagged + row.lagged
        self.by_status[row.status] = self.by_status.get(row.status, 0) + row.executed


def _counts(connection: Connection, keys: list[Any], where: Any) -> dict[tuple, Counts]:
    """Grouped by status first, as ix_execution_steps is ordered: no sort of the rows."""
    status, attempt = execution.c.status, execution.c.attempt
    lag = seconds(connection.dialect.name, execution.c.started_at, execution.c.due_at)
    groups = [status, execution.c.step_id, *keys]
    query = select(
        *groups,
        count_where(attempt == 1).label("reached"),
        func.count().label("executed"),
        func.sum(attempt).label("attempts"),
        func.sum(lag).label("lag"),
        func.count(lag).label("lagged"),
    )
    counted: dict[tuple, Counts] = {}
    if keys:
        query = query.select_from(ON_ENROLLMENT)
    for row in connection.execute(query.where(where).group_by(*groups)):
        key = _key(row, bool(keys))
        counted.setdefault(key, Counts(row.step_id)).add(row)
    return counted


def _reasons(connection: Connection, keys: list[Any], where: Any) -> dict[tuple, dict]:
    """Why steps were skipped or failed: the most common reasons per step."""
    status, error = execution.c.status, execution.c.error
    query = (
        select(*keys, execution.c.step_id, status, error, func.count().label("count"))
        .where(where & status.in_([literal_column("'skipped'"), literal_column("'failed'")]))
        .group_by(*keys, execution.c.step_id, status, error)
    )
    if keys:
        query = query.select_from(ON_ENROLLMENT)
    found: dict[tuple, dict[str, list]] = {}
    for row in connection.execute(query):
        key = (row.version if keys else None, row.step_id)
        kind = "skip_reasons" if row.status == "skipped" else "failure_reasons"
        found.setdefault(key, {}).setdefault(kind, []).append((row.error, row.count))
    return {
        key: {kind: top_reasons(counted, "count") for kind, counted in lists.items()}
        for key, lists in found.items()
    }


def _steps(connection: Connection, sequence_id: int) -> list[Any]:
    """Every version's steps: (version, step_id, name, action_type), by version and position."""
    version = SequenceVersion.__table__
    query = (
        select(version.c.version, col(Step.step_id), col(Step.name), col(Step.action_type))
        .join(Step, col(Step.version_id) == version.c.id)
        .where(version.c.sequence_id == sequence_id)
        .order_by(version.c.version, col(Step.position))
    )
    return list(connection.execute(query))


def _shown(row: Any) -> dict[str, Any]:
    return {"step_id": row.step_id, "name": row.name, "action_type": row.action_type}


def _layout(
    connection: Connection, sequence_id: int, counted: dict[tuple, Counts]
) -> dict[tuple, dict[str, Any]]:
    """The current version's steps in order, then step ids the log has but the version does not
    (steps removed since)."""
    steps = _steps(connection, sequence_id)
    current = max((row.version for row in steps), default=None)
    shown = {(None, row.step_id): _shown(row) for row in steps if row.version == current}
    for key in sorted(counted, key=lambda k: k[1]):
        shown.setdefault(key, {"step_id": key[1], "name": key[1], "action_type": None})
    return shown


def _versions_layout(
    connection: Connection, sequence_id: int, counted: dict[tuple, Counts]
) -> dict[tuple, dict[str, Any]]:
    """Each version's own steps, step by step in the newest version's order (a removed step
    after the step it followed), then version by version; `removed`: not in the newest version.
    Steps the log has under a version that lacks them (a moved lead's past) are left out."""
    steps = _steps(connection, sequence_id)
    order = _step_order(steps)
    newest = {row.step_id for row in steps if row.version == steps[-1].version} if steps else set()
    ordered = sorted(steps, key=lambda row: (order[row.step_id], row.version))
    return {
        (row.version, row.step_id): _shown(row)
        | {"version": row.version, "removed": row.step_id not in newest}
        for row in ordered
    }


def _step_order(steps: list[Any]) -> dict[str, int]:
    """Step id -> its place: the newest version's steps in order, each older step right after
    the step it followed in its own version."""
    order: list[str] = []
    for version in sorted({row.version for row in steps}, reverse=True):
        previous: str | None = None
        for row in (row for row in steps if row.version == version):
            if row.step_id not in order:
                order.insert(order.index(previous) + 1 if previous else 0, row.step_id)
            previous = row.step_id
    return {step_id: place for place, step_id in enumerate(order)}


def _step_row(
    step: dict[str, Any], counts: Counts | None, reasons: dict[str, list]
) -> dict[str, Any]:
    counts = counts or Counts(step["step_id"])
    figures = {"reached": counts.reached, "executed": counts.executed}
    for name, statuses in OUTCOMES.items():
        figures[name] = sum(counts.by_status.get(status, 0) for status in statuses)
    averages = {
        "avg_attempts": _round(counts.attempts / counts.tried, 2) if counts.tried else None,
        "avg_lag_seconds": _round(counts.lag / counts.lagged, 1) if counts.lagged else None,
    }
    success = rate(figures["succeeded"], figures["succeeded"] + figures["failed"])
    return (
        step
        | figures
        | {"success_rate": success}
        | averages
        | {"skip_reasons": reasons.get("skip_reasons", [])}
        | {"failure_reasons": reasons.get("failure_reasons", [])}
    )


def _round(value: Any, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)


def _with_dropoff(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each step's reached as a share of its version's first step, and how many left before it."""
    first: dict[Any, int] = {}
    previous: dict[Any, int] = {}
    for row in rows:
        group = row.get("version")
        start = first.setdefault(group, row["reached"])
        row["reached_rate"] = rate(row["reached"], start)
        row["dropped"] = max(previous.get(group, row["reached"]) - row["reached"], 0)
        previous[group] = row["reached"]
    return rows
