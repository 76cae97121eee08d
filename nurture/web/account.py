"""Signing in and out: the sign-in page (a link's code or a token pasted), the session cookie."""

import hmac
from typing import Annotated

from fastapi import Form, Request, Response
from fastapi.responses import RedirectResponse

from nurture.store.tables import ApiToken
from nurture.web.pages import Ctx, Viewer, csrf_exempt, page_router, render
from nurture.web.signin import (
    COOKIE,
    LINK_SECONDS,
    SESSION_SECONDS,
    SIGNIN_COOKIE,
    new_nonce,
    session_value,
    token_of_link,
    token_of_secret,
)

router = page_router()
REFUSED = (
    "that sign-in link has expired or is not valid, or its token was revoked: "
    "run `nurture dashboard link` for a new one"
)


def _next(target: str | None) -> str:
    """Where to go after signing in: a path of this site only (never another host)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/")
def home(visitor: Viewer) -> Response:
    return RedirectResponse("/sequences", status_code=303)


@router.get("/signin")
def signin_page(request: Request, next: str | None = None) -> Response:
    return _signin_form(request, _next(next))


def _signin_form(request: Request, target: str, message: str | None = None) -> Response:
    nonce = new_nonce()
    page = render(
        request, "signin.html", 401 if message else 200, nonce=nonce, next=target, message=message
    )
    _cookie(request, page, SIGNIN_COOKIE, nonce, LINK_SECONDS, path="/signin")
    return page


@router.post("/signin")
@csrf_exempt
def signin(
    request: Request,
    ctx: Ctx,
    nonce: Annotated[str, Form()] = "",
    code: Annotated[str, Form(max_length=500)] = "",
    token: Annotated[str, Form(max_length=500)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    """Sign in with a link's code or a token; the form's nonce must match its cookie."""
    expected = request.cookies.get(SIGNIN_COOKIE, "")
    if not (expected and nonce and hmac.compare_digest(expected.encode(), nonce.encode())):
        return _signin_form(request, _next(next), "the sign-in form expired: try again")
    with ctx.store.session() as session:
        row: ApiToken | None = None
        if code:
            row = token_of_link(session, code)
        elif token:
            row = token_of_secret(session, token)
        value = session_value(row, new_nonce()) if row is not None else None
    if value is None:
        message = REFUSED if code else "that token is unknown, revoked or has no dashboard scope"
        return _signin_form(request, _next(next), message)
    answer = RedirectResponse(_next(next), status_code=303)
    _cookie(request, answer, COOKIE, value, SESSION_SECONDS)
    answer.delete_cookie(SIGNIN_COOKIE, path="/signin")
    return answer


@router.post("/signout")
def signout(visitor: Viewer) -> Response:
    answer = RedirectResponse("/signin", status_code=303)
    answer.delete_cookie(COOKIE, path="/")
    return answer


def _cookie(
    request: Request, response: Response, name: str, value: str, seconds: int, path: str = "/"
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=seconds,
        path=path,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
