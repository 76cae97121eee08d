"""Put the dashboard on an app: its pages, its static files, the API's offline /docs.

A page is a module of this package with `router` and `NAV` (see nurture.web.pages); add its
name to PAGES and it is served and in the menu.
"""

from importlib import import_module

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from nurture.project.layout import Project
from nurture.settings import Settings
from nurture.store.db import Store
from nurture.web import account, docs
from nurture.web.pages import WebContext

PAGES = ("sequences", "funnels", "analytics", "leads", "inbox", "activity")


def install(app: FastAPI, settings: Settings, project: Project, store: Store) -> None:
    """Serve the dashboard at `/` (sign-in at /signin) and Swagger UI at /docs, offline."""
    ctx = WebContext(settings, project, store)
    app.state.web = ctx
    app.mount("/static", StaticFiles(packages=[("nurture.web", "static")]), name="static")
    app.include_router(account.router)
    for name in PAGES:
        module = import_module(f"nurture.web.{name}")
        app.include_router(module.router)
        ctx.nav.append(module.NAV)
    ctx.nav.sort(key=lambda item: item.order)
    app.include_router(docs.router)
