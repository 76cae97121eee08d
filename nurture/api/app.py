"""The HTTP API: `create_app(settings)` builds it; `nurture serve` runs it on uvicorn."""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from nurture import __version__
from nurture.api import (
    booking,
    email_webhook,
    engagement,
    enrollments,
    errors,
    health,
    insights,
    leads,
    sequences,
    unsubscribe,
    webhooks,
)
from nurture.api.auth import Tokens
from nurture.api.batching import Batcher
from nurture.api.deps import Context
from nurture.api.intake import LeadIntake
from nurture.api.limits import BodyLimit
from nurture.errors import StoreError
from nurture.leads.records import LeadRules
from nurture.project.layout import Project
from nurture.settings import Settings, load_settings
from nurture.store import migrate
from nurture.store.db import Store, create_engine
from nurture.web import app as dashboard

PROJECT_ENV = "NURTURE_SERVE_PROJECT"
"""`nurture serve` passes the project directory to its workers in this variable."""

DESCRIPTION = """\
Lead-nurturing sequences and lead ingestion. Every endpoint but `/healthz` wants
`Authorization: Bearer TOKEN` (`nurture tokens create NAME --scope read|write|ingest`).
Errors are JSON `{"message": ..., "field": ...}`; `field` is the path of an invalid value.
"""


def create_app(settings: Settings) -> FastAPI:
    """The app on the project's store (brought up to date first where auto_migrate is on)."""
    store = Store(settings.database, create_engine(settings.database))
    if settings.migrates:
        migrate.ensure_current(store.engine)
    else:
        migrate.check_current(store.engine)
    context = Context(
        settings, Project.from_settings(settings), store, LeadRules.from_settings(settings)
    )

    context.tokens, batcher = Tokens(context), Batcher(context)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await batcher.start()
        yield
        await batcher.stop()
        store.close()

    app = FastAPI(
        title="nurture",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # the dashboard serves /docs from its own copy of Swagger UI (offline)
        redoc_url=None,
    )
    app.state.context, app.state.batcher = context, batcher
    errors.install(app)
    app.add_exception_handler(StoreError, health.store_unavailable)  # before NurtureError's
    # the webhook's plain requests, inside the body limit (nurture.api.intake)
    app.add_middleware(LeadIntake, context=context, batcher=batcher)
    app.add_middleware(BodyLimit, limit=settings.api.max_body_bytes)
    routers = [leads, sequences, insights, enrollments, health, unsubscribe, webhooks]
    routers += [booking, engagement, email_webhook]
    for module in routers:  # the lead webhook first: matched in fewer steps
        app.include_router(module.router)
    dashboard.install(app, settings, context.project, store)  # the coach dashboard at /
    return app


def from_environment() -> Any:
    """uvicorn's app factory for `nurture serve` (each worker process calls it)."""
    project = os.environ.get(PROJECT_ENV)
    return create_app(load_settings(Path(project) if project else None))
