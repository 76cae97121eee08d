"""What every page shares: the context on the app, the templates, sign-in and roles, CSRF, errors.

A page module holds `router = page_router()` and `NAV = Nav(label, path, order)`; listing it
in nurture.web.app.PAGES puts it in the dashboard and its menu. Its handlers are plain
functions (run in a thread: the services they call take a store session) that ask for a
`Viewer` or an `Editor` and return `render(request, "x.html", ...)`. Every POST of a page
router must carry the session's CSRF token (a form field `csrf` or the X-CSRF-Token header
htmx sends); errors come back as a page (or, to htmx, a message in the page's #flash).
"""

import hmac
import json
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from nurture.errors import (
    BadFilter,
    Conflict,
    InvalidSequence,
    InvalidState,
    NotFound,
    NurtureError,
    SpecError,
    StoreError,
)
from nurture.project.layout import Project
from nurture.settings import Settings
from nurture.store import activity
from nurture.store.db import Store
from nurture.web.signin import COOKIE, Sessions, Visitor
from nurture.web.snapshots import Snapshots

log = logging.getLogger("nurture.web")
TEMPLATES = Jinja2Templates(
    directory=str(Path(str(resources.files("nurture.web").joinpath("templates"))))
)
CSRF_HEADER = "X-CSRF-Token"
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
"""No script but the package's own files (no inline script), no other site, no framing."""
CSRF_REFUSED = "the form's CSRF token is missing or wrong: reload the page and try again"


@dataclass(frozen=True)
class Nav:
    """A page's line in the menu."""

    label: str
    path: str
    order: int


@dataclass
class WebContext:
    """What pages share, kept on the app as `app.state.web`."""

    settings: Settings
    project: Project
    store: Store
    nav: list[Nav] = field(default_factory=list)
    sessions: Sessions = field(default_factory=Sessions)
    snapshots: Snapshots = field(default_factory=Snapshots)
    live_seconds: float = 2.0
    """How often the live pages (server-sent events) look for new figures."""


def web(request: Request) -> WebContext:
    return request.app.state.web


class SignInNeeded(Exception):
    """No valid session: a page sends the visitor to /signin."""


class PageError(Exception):
    """An answer other than the page: its status and what the visitor reads."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (NotFound, 404),
    (Conflict, 409),
    (InvalidState, 409),
    (BadFilter, 422),
    (InvalidSequence, 422),
    (SpecError, 422),
    (StoreError, 503),
    (NurtureError, 400),
)


def _visitor(request: Request) -> Visitor:
    value = request.cookies.get(COOKIE)
    ctx = web(request)
    visitor = ctx.sessions.cached(value)
    if visitor is None:
        with ctx.store.session() as session:
            visitor = ctx.sessions.visitor(session, value)
    if visitor is None:
        raise SignInNeeded()
    request.state.visitor = visitor
    return visitor


def _editor(visitor: Annotated[Visitor, Depends(_visitor)]) -> Visitor:
    if not visitor.edits:
        raise PageError(
            403,
            f"{visitor.name!r} may view the dashboard but not change it "
            "(a token with the dashboard:edit scope may)",
        )
    return visitor


Viewer = Annotated[Visitor, Depends(_visitor)]
Editor = Annotated[Visitor, Depends(_editor)]
Ctx = Annotated[WebContext, Depends(web)]


def render(
    request: Request,
    template: str,
    status_code: int = 200,
    flash: str | None = None,
    **values: Any,
) -> HTMLResponse:
    """A page (or, to htmx, a fragment) from its template, with what every page shows; `flash`
    says what was done (in the page's #flash; to htmx in a `nurture:flash` event app.js shows)."""
    ctx = web(request)
    values |= {
        "visitor": getattr(request.state, "visitor", None),
        "nav": ctx.nav,
        "path": request.url.path,
        "flash": flash,
    }
    response = TEMPLATES.TemplateResponse(request, template, values, status_code=status_code)
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Cache-Control"] = "no-store"
    if flash and is_htmx(request):
        response.headers["HX-Trigger"] = json.dumps({"nurture:flash": flash})  # ASCII-escaped
    return response


def record(ctx: WebContext, visitor: Visitor, action: str, subject: str, said: str) -> str:
    """Keep a change made on the dashboard, with who made it (the Activity page); `said`."""
    with ctx.store.session() as session:
        activity.record(session, visitor.name, action, subject, datetime.now(UTC), said)
    return said


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


async def _csrf_refused(request: Request) -> bool:
    """A POST of a signed-in visitor without the session's CSRF token (form field or header)."""
    visitor = await run_in_threadpool(_known_visitor, request)
    if visitor is None:
        return False  # no session: the page's own dependency answers (sign in)
    sent = request.headers.get(CSRF_HEADER) or None
    if sent is None and "form" in request.headers.get("content-type", ""):
        sent = str((await request.form()).get("csrf", ""))
    return not (sent and hmac.compare_digest(sent.encode(), visitor.csrf.encode()))


def _known_visitor(request: Request) -> Visitor | None:
    try:
        return _visitor(request)
    except SignInNeeded:
        return None


def error_page(request: Request, status: int, message: str) -> Response:
    """The error as a page, or as a message htmx puts in the page's #flash."""
    if is_htmx(request):
        response = TEMPLATES.TemplateResponse(
            request, "_flash.html", {"message": message, "error": True}, status_code=status
        )
        response.headers["HX-Retarget"], response.headers["HX-Reswap"] = "#flash", "innerHTML"
        return response
    return render(request, "error.html", status, status=status, message=message)


class PageRoute(APIRoute):
    """A dashboard route: CSRF checked on every POST, errors answered as pages, never a 500."""

    csrf_exempt = False

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        exempt = self.csrf_exempt or getattr(self.endpoint, "csrf_exempt", False)

        async def guarded(request: Request) -> Response:
            try:
                if request.method != "POST":
                    return await handler(request)
                if not exempt and await _csrf_refused(request):
                    raise PageError(403, CSRF_REFUSED)
                web(request).snapshots.clear()  # the page the change answers with is fresh
                answer = await handler(request)
                web(request).snapshots.clear()
                if is_htmx(request) or answer.status_code != 200 or exempt:
                    return answer
                return RedirectResponse(_back(request), status_code=303)  # a form without JS
            except Exception as error:  # noqa: BLE001 - every error is answered as a page
                return _answer(request, error)

        return guarded


def _answer(request: Request, error: Exception) -> Response:
    if isinstance(error, SignInNeeded):
        return _to_signin(request)
    if isinstance(error, PageError):
        return error_page(request, error.status, str(error))
    if isinstance(error, HTTPException):
        return error_page(request, error.status_code, str(error.detail))
    if isinstance(error, RequestValidationError):
        return error_page(request, 404 if _in_path(error) else 422, _invalid(error))
    if isinstance(error, NurtureError):
        status = next(code for kind, code in _STATUS if isinstance(error, kind))
        return error_page(request, status, str(error))
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_page(request, 500, f"unexpected {type(error).__name__} (see the server's log)")


def _in_path(error: RequestValidationError) -> bool:
    return any(problem["loc"][:1] == ("path",) for problem in error.errors())


def _invalid(error: RequestValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"][1:])
    if first["loc"][:1] == ("path",):
        return f"no such page: {where} {first.get('input')!r} is not valid"
    return f"{where}: {first['msg']}"


def _back(request: Request) -> str:
    """The page a form was posted from, when it is one of this site's (else the dashboard)."""
    referer = urlsplit(request.headers.get("referer", ""))
    same = referer.netloc == request.url.netloc and referer.path.startswith("/")
    return referer.path + (f"?{referer.query}" if referer.query else "") if same else "/"


def _to_signin(request: Request) -> Response:
    if request.method != "GET" or is_htmx(request):
        message = "you are not signed in (or your session ended): sign in again"
        response = error_page(request, 401, message)
        if is_htmx(request):
            response.headers["HX-Redirect"] = "/signin"
        return response
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/signin?next={quote(target)}", status_code=303)


def page_router() -> APIRouter:
    """The router of a dashboard page module (left out of the API's OpenAPI)."""
    return APIRouter(route_class=PageRoute, include_in_schema=False)


def csrf_exempt(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """A POST that checks its own token (the sign-in form: there is no session yet)."""
    endpoint.csrf_exempt = True  # type: ignore[attr-defined]
    return endpoint


def when(value: datetime | None) -> str:
    """A time as the pages show it (UTC)."""
    return "" if value is None else f"{value:%Y-%m-%d %H:%M}"


TEMPLATES.env.filters["when"] = when
