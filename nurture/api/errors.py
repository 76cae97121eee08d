"""Errors as JSON `{message, field?}`: one status per kind of problem, documented in OpenAPI."""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from pydantic.alias_generators import to_camel
from starlette.exceptions import HTTPException

from nurture.errors import (
    ConfigError,
    Conflict,
    InvalidState,
    NotFound,
    NurtureError,
    SpecError,
    StoreError,
)
from nurture.ingest import KeyReused
from nurture.leads import InvalidLead
from nurture.stored import InvalidSequence, field_path

log = logging.getLogger("nurture.api")


class Error(BaseModel):
    message: str
    field: str | None = None


def _described(text: str) -> dict[str, Any]:
    return {"model": Error, "description": text}


ERRORS: dict[int | str, dict[str, Any]] = {
    400: _described("The request cannot be carried out as given."),
    401: _described("No valid bearer token."),
    403: _described("The token's scopes do not allow this."),
    404: _described("No such sequence, lead or funnel."),
    409: _described("Conflicts with the store, or sequences are read-only over HTTP."),
    413: _described("The body is larger than api.max_body_bytes."),
    422: _described("Invalid body or parameter; `field` is its path."),
    503: _described("The store cannot be reached, or the server lacks a setting this needs."),
}

_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (NotFound, 404),
    (ConfigError, 503),
    (Conflict, 409),
    (InvalidState, 409),
    (SpecError, 422),
    (KeyReused, 422),
    (StoreError, 503),
    (NurtureError, 400),
)
_LEAD_FIELDS = (("invalid email", "email"), ("invalid phone", "phone"), ("score", "score"))
_LEAD_FIELDS += (("time zone", "timezone"), ("name", "name"))


def error_response(status: int, message: str, field: str | None = None, **headers: str) -> Any:
    body = {"message": message} | ({"field": field} if field else {})
    return JSONResponse(body, status_code=status, headers=headers or None)


def install(app: FastAPI) -> None:
    """Every known error becomes a JSON answer; anything else is a logged 500."""
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(InvalidSequence, _invalid_sequence)
    app.add_exception_handler(InvalidLead, _invalid_lead)
    app.add_exception_handler(NurtureError, _nurture)
    app.add_exception_handler(Exception, _unexpected)


async def _http(request: Request, error: Any) -> Any:
    headers = getattr(error, "headers", None) or {}
    return error_response(error.status_code, str(error.detail), **headers)


async def _validation(request: Request, error: Any) -> Any:
    first = error.errors()[0]
    loc = (
        first["loc"][1:] if first["loc"][:1] in (("body",), ("query",), ("path",)) else first["loc"]
    )
    return error_response(422, first["msg"], field_path(loc))


async def _invalid_sequence(request: Request, error: Any) -> Any:
    return error_response(422, str(error), error.field)


async def _invalid_lead(request: Request, error: Any) -> Any:
    message = str(error)
    field = next((name for prefix, name in _LEAD_FIELDS if message.startswith(prefix)), None)
    return error_response(422, message, field)


def status_of(error: NurtureError) -> int:
    """The HTTP status of a known error."""
    return next(code for kind, code in _STATUS if isinstance(error, kind))


async def _nurture(request: Request, error: Any) -> Any:
    field = getattr(error, "field", None)  # a Conflict's: `external_id` is `externalId` here
    return error_response(status_of(error), str(error), field and to_camel(field))


async def _unexpected(request: Request, error: Exception) -> Any:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response(500, f"unexpected {type(error).__name__} (see the server's log)")
