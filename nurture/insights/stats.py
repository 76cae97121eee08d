"""Figures per sequence (and per version) and per funnel, from SQL aggregates; the time window.

Steps are in step_stats, channels and failures in channel_stats.

Every figure is a GROUP BY in the database over indexed columns (migration 0005); only
the grouped rows come back. `--since/--until` pick enrollments by when they started (a cohort),
match decisions by when they were made, and executions by when they ran.
"""

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, literal_column, select
from sqlmodel import Session, col

from nurture.insights import engagement_stats
from nurture.leads.enrollment import LIVE
from nurture.rules.periods import Window
from nurture.store.aggregates import day, elapsed, medians, seconds
from nurture.store.tables import Enrollment, Funnel, Lead, MatchDecision, Sequence

enrollment = Enrollment.__table__
SUCCEEDED = ("sent", "done")
TOP_REASONS = 5


def rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


_LEADS_OWN = re.compile(r", lead has .*?(?=; [✗✓] |$)", re.S)


def general(reason: str | None) -> str:
    """A reason without the lead's own values in any of its checks (`✗ lead_score: wants 40-100,
    lead has 10; ✗ lead_temperature: wants Cold, lead has 'Warm'` → `✗ lead_score: wants
    40-100; ✗ lead_temperature: wants Cold`), so that reasons group and each failed check shows."""
    return _LEADS_OWN.sub("", reason or "")


def top_reasons(counted: Iterable[tuple[str | None, int]], key: str) -> list[dict[str, Any]]:
    """The most common general reasons of (reason, count) pairs, as [{"reason", key}]."""
    totals: Counter[str] = Counter()
    for text, count in counted:
        totals[general(text) or "(no message)"] += count
    ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    return [{"reason": text, key: count} for text, count in ranked[:TOP_REASONS]]


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(float(value), 1)


def sequence_figures(
    session: Session,
    window: Window,
    *,
    sequence_id: int | None = None,
    funnel_id: int | None = None,
    by_version: bool = False,
) -> list[dict[str, Any]]:
    """Per sequence (and version): enrollments by outcome, conversion rate, completion times."""
    connection = session.connection()
    keys = [enrollment.c.sequence_id] + ([enrollment.c.version] if by_version else [])
    where = window.of(enrollment.c.enrolled_at)
    if sequence_id is not None:
        where &= enrollment.c.sequence_id == sequence_id
    if funnel_id is not None:
        leads = select(col(Lead.id)).where(col(Lead.funnel_id) == funnel_id)
        where &= enrollment.c.lead_id.in_(leads)
    counts = _outcomes(connection, keys, where)
    dialect, finished, enrolled = (
        connection.dialect.name,
        enrollment.c.finished_at,
        enrollment.c.enrolled_at,
    )
    # A literal, not a parameter: SQLite only uses a partial index the query visibly implies.
    completed = where & (enrollment.c.status == literal_column("'completed'"))
    middle = medians(
        connection,
        keys,
        seconds(dialect, finished, enrolled),
        elapsed(dialect, finished, enrolled),
        completed,
        _completed_counts(counts, by_version),
    )
    names = sequence_names(connection)
    engaged = engagement_stats.engaged_enrollments(connection, keys, where)
    rows = [_sequence_row(row, names, middle, by_version, engaged) for row in counts]
    if not by_version:
        rows += _idle_sequences(names, {row.sequence_id for row in counts}, sequence_id)
    return sorted(rows, key=lambda row: (row["sequence"].casefold(), row.get("version", 0)))


def _completed_counts(counts: list["Outcomes"], by_version: bool) -> dict[tuple, int]:
    return {
        (row.sequence_id, row.version) if by_version else (row.sequence_id,): row.completed
        for row in counts
    }


@dataclass
class Outcomes:
    """One sequence's (or version's) enrollments by status, and the time the ended ones took."""

    sequence_id: int
    version: int | None
    assigned: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    took: dict[str, tuple[float, int]] = field(default_factory=dict)  # status: (seconds, rows)

    def __getattr__(self, status: str) -> int:  # row.completed, row.active, ...
        if status == "active":
            return sum(self.by_status.get(s, 0) for s in LIVE)
        if status in _ENDED:
            return self.by_status.get(status, 0)
        raise AttributeError(status)

    def average(self, status: str) -> float | None:
        total, rows = self.took.get(status, (0.0, 0))
        return total / rows if rows else None


def _outcomes(
    connection: Connection, keys: list[Any], where: ColumnElement[bool]
) -> list[Outcomes]:
    """Two grouped queries in ix_enrollment_stats order (sequence, version, status): the counts,
    then the durations of completed and converted enrollments only."""
    c, by_version = enrollment.c, len(keys) > 1
    groups = [c.sequence_id, c.version, c.status]
    # the groups named one by one (not *groups), so that mypy knows each row's four values
    counts = select(c.sequence_id, c.version, c.status, func.count()).where(where).group_by(*groups)
    took = seconds(connection.dialect.name, c.finished_at, c.enrolled_at)
    ended = (
        select(c.sequence_id, c.version, c.status, func.sum(took), func.count(took))
        .where(where & c.status.in_([literal_column("'completed'"), literal_column("'converted'")]))
        .group_by(*groups)
    )
    found: dict[tuple, Outcomes] = {}
    for sequence_id, version, status, count in connection.execute(counts):
        key = (sequence_id, version if by_version else None)
        row = found.setdefault(key, Outcomes(*key))
        row.assigned += count
        row.by_status[status] = row.by_status.get(status, 0) + count
    for sequence_id, version, status, total, rows in connection.execute(ended):
        row = found[(sequence_id, version if by_version else None)]
        before, counted = row.took.get(status, (0.0, 0))
        row.took[status] = (before + float(total or 0.0), counted + rows)
    return list(found.values())


_ENDED = ("completed", "converted", "stopped", "failed", "unknown")


def _sequence_row(
    row: Any,
    names: dict[int, tuple[str, bool]],
    middle: dict[tuple, Any],
    by_version: bool,
    engaged: dict[tuple, int],
) -> dict[str, Any]:
    key = (row.sequence_id, row.version) if by_version else (row.sequence_id,)
    data: dict[str, Any] = {"sequence": names[row.sequence_id][0]}
    if by_version:
        data["version"] = row.version
    data |= {"assigned": row.assigned, "active": row.active}
    data |= {status: getattr(row, status) for status in _ENDED}
    return data | {
        "conversion_rate": rate(row.converted, row.assigned),
        "avg_completion_seconds": _seconds(row.average("completed")),
        "median_completion_seconds": _seconds(middle.get(key)),
        "avg_conversion_seconds": _seconds(row.average("converted")),
        "engaged": engaged.get(key, 0),
        "engaged_rate": rate(engaged.get(key, 0), row.assigned),
    }


def _idle_sequences(
    names: dict[int, tuple[str, bool]], seen: set[int], only: int | None
) -> list[dict[str, Any]]:
    """Live sequences no enrollment in the window reached (or `only` that one), with zeros."""
    zero = dict.fromkeys(("assigned", "active", *_ENDED, "engaged"), 0)
    empty = dict.fromkeys(("conversion_rate", "avg_completion_seconds", "engaged_rate"), None)
    empty |= dict.fromkeys(("median_completion_seconds", "avg_conversion_seconds"), None)
    return [
        {"sequence": name} | zero | empty
        for sequence_id, (name, live) in names.items()
        if live and sequence_id not in seen and only in (None, sequence_id)
    ]


def sequence_names(connection: Connection) -> dict[int, tuple[str, bool]]:
    """Every sequence's name and whether it is live (not deleted), by id."""
    query = select(col(Sequence.id), col(Sequence.name), col(Sequence.deleted_at))
    return {row.id: (row.name, row.deleted_at is None) for row in connection.execute(query)}


def funnel_figures(
    session: Session, window: Window, funnel_id: int | None = None
) -> list[dict[str, Any]]:
    """Per funnel: leads in, matched, leads by sequence, and why the others matched nothing."""
    connection, decision = session.connection(), MatchDecision.__table__
    where = window.of(decision.c.decided_at) & decision.c.funnel_id.is_not(None)
    if funnel_id is not None:
        where &= decision.c.funnel_id == funnel_id
    matched = where & decision.c.sequence_id.is_not(None)
    leads_in = _count_leads(connection, [decision.c.funnel_id], where)
    won = _count_leads(connection, [decision.c.funnel_id, decision.c.sequence_id], matched)
    missed = (
        select(decision.c.funnel_id, decision.c.reason, func.count().label("leads"))
        .where(where & decision.c.sequence_id.is_(None))
        .group_by(decision.c.funnel_id, decision.c.reason)
    )
    return _funnel_rows(connection, leads_in, won, list(connection.execute(missed)))


def _count_leads(connection: Connection, keys: list[Any], where: ColumnElement[bool]) -> dict:
    lead_id = MatchDecision.__table__.c.lead_id
    query = select(*keys, func.count(lead_id.distinct())).where(where).group_by(*keys)
    return {tuple(row[:-1]): row[-1] for row in connection.execute(query)}


def _funnel_rows(connection: Connection, leads_in: dict, won: dict, missed: list) -> list[dict]:
    funnels = dict(connection.execute(select(col(Funnel.id), col(Funnel.name))).all())
    names = {key: name for key, (name, _) in sequence_names(connection).items()}
    rows = []
    for (funnel_id,), count in leads_in.items():
        by_sequence = sorted(
            ({"sequence": names[s], "leads": n} for (f, s), n in won.items() if f == funnel_id),
            key=lambda item: (-item["leads"], item["sequence"]),
        )
        matched = sum(item["leads"] for item in by_sequence)
        reasons = top_reasons(
            ((r.reason, r.leads) for r in missed if r.funnel_id == funnel_id), "leads"
        )
        rows.append(
            {
                "funnel": funnels[funnel_id],
                "leads_in": count,
                "matched": matched,
                "unmatched": count - matched,
                "match_rate": rate(matched, count),
                "by_sequence": by_sequence,
                "unmatched_reasons": reasons,
            }
        )
    return sorted(rows, key=lambda row: row["funnel"].casefold())


def conversions_by_day(session: Session, window: Window) -> list[dict[str, Any]]:
    """Per sequence and day: enrollments the lead's conversion ended that day."""
    connection = session.connection()
    on = day(connection.dialect.name, enrollment.c.finished_at)
    query = (
        select(enrollment.c.sequence_id, on.label("day"), func.count().label("converted"))
        .where((enrollment.c.status == "converted") & window.of(enrollment.c.finished_at))
        .group_by(enrollment.c.sequence_id, on)
        .order_by(on)
    )
    names = sequence_names(connection)
    return [
        {"sequence": names[row.sequence_id][0], "day": row.day, "converted": row.converted}
        for row in connection.execute(query)
    ]
