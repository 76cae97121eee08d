"""The stats queries read indexes, never the enrollment or execution tables row by row (EXPLAIN)."""

import re

import histories
import pytest
from sqlalchemy import event

from nurture.insights.report import StatsRequest, gather
from nurture.rules.periods import Window

VIEWS = [
    StatsRequest(Window()),
    StatsRequest(Window(), sequence="Welcome"),
    StatsRequest(Window(), sequence="Welcome", by="version"),
    StatsRequest(Window(), by="version"),
]


def statements(store, request: StatsRequest) -> list[tuple[str, object]]:
    """Every SQL statement `nurture stats` runs for this view, with its parameters."""
    seen: list[tuple[str, object]] = []

    def keep(_conn, _cursor, statement, parameters, _context, _many):  # noqa: ANN001
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", keep)
    try:
        with store.session() as session:
            gather(session, request)
    finally:
        event.remove(store.engine, "before_cursor_execute", keep)
    return seen


def plan(store, statement: str, parameters: object) -> str:
    with store.engine.connect() as connection:
        if store.engine.dialect.name == "sqlite":
            rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
            return "\n".join(str(row[-1]) for row in rows)
        connection.exec_driver_sql("SET enable_seqscan = off")  # tiny tables: plan as if big
        rows = connection.exec_driver_sql("EXPLAIN " + statement, parameters)
        return "\n".join(row[0] for row in rows)


@pytest.mark.parametrize("request_", VIEWS, ids=lambda r: f"{r.sequence or 'all'}-{r.by}")
def test_stats_queries_use_the_indexes(store, project, request_):
    histories.build(store, project)
    for statement, parameters in statements(store, request_):
        shown = plan(store, statement, parameters)
        table_scan = re.search(r"SCAN (enrollment|execution)(?! USING COVERING INDEX)", shown)
        seq_scan = re.search(r"Seq Scan on (enrollment|execution)", shown)
        assert not table_scan and not seq_scan, f"{statement}\n{shown}"
