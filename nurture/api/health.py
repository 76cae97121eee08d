"""`/healthz` (the store reachable, its migrations current) and `/metrics` (Prometheus)."""

import logging
from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from pydantic import BaseModel

from nurture.api.auth import allows
from nurture.api.deps import Ctx, Store
from nurture.api.errors import ERRORS, error_response
from nurture.insights.metrics import Figures, figures
from nurture.store import migrate

router = APIRouter(tags=["health"])
log = logging.getLogger("nurture.api")
UNAVAILABLE = "the store is unavailable: the server's log says why"
"""What a client is told of a store it cannot reach: never its host, database or user."""


def store_unavailable(request: Request, error: Exception) -> Response:  # a StoreError
    """A store error as a 503 that names nothing of the store; the detail goes to the log."""
    log.error("%s %s: %s", request.method, request.url.path, error)
    return error_response(503, UNAVAILABLE)


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    revision: str | None
    head: str
    message: str | None = None


@router.get(
    "/healthz",
    response_model=Health,
    responses={503: {"model": Health, "description": "Store unreachable or not migrated."}},
)
def healthz(ctx: Ctx) -> Response:
    """200 when the store answers and its schema is at this version's newest migration."""
    head = migrate.head()
    try:
        revision = migrate.revision_of(ctx.store.engine)
    except Exception as error:  # any failure to reach the store is what this reports
        log.error("/healthz: the store is unavailable: %s", error)
        body = Health(status="unavailable", revision=None, head=head, message=UNAVAILABLE)
        return JSONResponse(body.model_dump(), status_code=503)
    if revision != head:
        message = f"the store is at revision {revision}, not {head}: run `nurture db upgrade`"
        body = Health(status="unavailable", revision=revision, head=head, message=message)
        return JSONResponse(body.model_dump(), status_code=503)
    return JSONResponse(Health(status="ok", revision=revision, head=head).model_dump())


@router.get(
    "/metrics",
    dependencies=allows("read"),
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format."},
        **{code: ERRORS[code] for code in (401, 403, 503)},
    },
)
def metrics(ctx: Ctx) -> Response:
    """Leads, enrollments by status, executions by result, due backlog, lag: SQL aggregates."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(ctx.store))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


class StoreCollector:
    """Reads the figures from the store at each scrape (several servers agree: one store)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self):  # noqa: ANN201 - prometheus_client's collector protocol
        with self.store.begin() as connection:
            found = figures(connection, datetime.now(UTC))
        yield from _families(found)


def _families(found: Figures):  # noqa: ANN202
    yield CounterMetricFamily("nurture_leads_ingested", "Leads stored.", value=found.leads)
    enrollments = GaugeMetricFamily(
        "nurture_enrollments", "Enrollments by status.", labels=["status"]
    )
    for status, count in sorted(found.enrollments.items()):
        enrollments.add_metric([status], count)
    yield enrollments
    executions = CounterMetricFamily(
        "nurture_executions", "Step executions by result.", labels=["status"]
    )
    for status, count in sorted(found.executions.items()):
        executions.add_metric([status], count)
    yield executions
    yield GaugeMetricFamily("nurture_due_backlog", "Steps due and not run.", value=found.due)
    yield GaugeMetricFamily(
        "nurture_lag_seconds", "How overdue the oldest due step is.", value=found.lag_seconds
    )
    yield GaugeMetricFamily(
        "nurture_workers_alive", "Daemons with a recent heartbeat.", value=found.workers_alive
    )
