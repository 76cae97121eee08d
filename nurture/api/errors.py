"""Errors as JSON `{message, field?}`: one status per kind of problem, documented in OpenAPI."""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from pydantic.alias_generators import to_camel
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException
from starlette.routing import Match

from nurture.errors import (
    BadFilter,
    ConfigError,
    Conflict,
    InvalidLead,
    InvalidSequence,
    InvalidState,
    KeyReused,
    NotFound,
    NurtureError,
    SpecError,
    StoreError,
)
from nurture.project.stored import field_path
from nurture.spec.diagnostics import data_problems, error_message
from nurture.spec.models import SequenceSpec
from nurture.store.connect import reason

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
    415: _described("The body is not sent as JSON (Content-Type: application/json)."),
    422: _described("Invalid body or parameter; `field` is its path."),
    503: _described("The store cannot be reached, or the server lacks a setting this needs."),
}

_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (BadFilter, 422),
    (NotFound, 404),
    (ConfigError, 503),
    (Conflict, 409),
    (InvalidState, 409),
    (SpecError, 422),
    (KeyReused, 422),
    (StoreError, 503),
    (NurtureError, 400),
)
_MESSAGES = {
    "string_unicode": "not valid Unicode text: it holds a lone surrogate (\\ud800-\\udfff)"
}
"""pydantic's words for these are a Rust parser's ("unable to parse raw data as a unicode string")."""
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


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
    app.add_exception_handler(DataError, _data)
    app.add_exception_handler(Exception, _unexpected)


async def _http(request: Request, error: Any) -> Any:
    headers = getattr(error, "headers", None) or {}
    if error.status_code == 405:
        allowed = _allowed(request)
        message = f"{request.method} is not allowed here: use {', '.join(allowed)}"
        return error_response(405, message, **headers | {"Allow": ", ".join(allowed)})
    return error_response(error.status_code, str(error.detail), **headers)


def _allowed(request: Request) -> list[str]:
    """The methods some route serves at this path (Starlette's Allow names one route's only)."""
    return [method for method in METHODS if _served(request, method)]


def _served(request: Request, method: str) -> bool:
    scope = {**request.scope, "method": method}
    return any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes)


async def _validation(request: Request, error: Any) -> Any:
    first = error.errors()[0]
    if first["type"] == "json_invalid":
        return error_response(422, _not_json(error.body, first["loc"][-1], first["ctx"]["error"]))
    if first["loc"] == ("body",) and not _json_type(request.headers.get("content-type", "")):
        return error_response(415, "send the body as JSON (Content-Type: application/json)")
    if first["loc"] == ("body",) and first["type"] == "missing":
        return error_response(422, "the body is missing: send a JSON object")
    sequence = _sequence_body(request)
    if sequence is not None and all(e["loc"][0] == "body" for e in error.errors()):
        below = [e | {"loc": e["loc"][1:]} for e in error.errors()]
        return await _invalid_sequence(
            request, InvalidSequence(data_problems(below, error.body, sequence))
        )
    loc = (
        first["loc"][1:] if first["loc"][0] in ("body", "query", "path", "header") else first["loc"]
    )
    if first["type"] == "located":  # a model's own check: ctx["loc"] is below the model
        loc += tuple(first["ctx"]["loc"])
    message = _MESSAGES.get(first["type"]) or (
        error_message(first) if first["type"] == "value_error" else first["msg"]
    )
    return error_response(422, message, field_path(loc) if loc else None)


def _sequence_body(request: Request) -> type[SequenceSpec] | None:
    """The route's body model when it is a sequence: its errors are told as `validate` does."""
    body = getattr(request.scope.get("route"), "body_field", None)
    model = body and body.field_info.annotation
    return model if isinstance(model, type) and issubclass(model, SequenceSpec) else None


def _not_json(text: str, at: int, problem: str) -> str:
    line, column = text.count("\n", 0, at) + 1, at - text.rfind("\n", 0, at)
    return f"the body is not valid JSON: {problem} (line {line}, column {column})"


def _json_type(content_type: str) -> bool:
    """`application/json` or `application/*+json`, as FastAPI decodes them."""
    kind = content_type.partition(";")[0].strip().lower()
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


async def _invalid_sequence(request: Request, error: Any) -> Any:
    return error_response(422, str(error), error.field)


async def _invalid_lead(request: Request, error: Any) -> Any:
    return error_response(422, str(error), _camel(error.field))


def _camel(field: str | None) -> str | None:
    """`external_id` is `externalId` here; a custom field's name (`fields.goal_2`) is as given."""
    if not field:
        return None
    head, dot, rest = field.partition(".")
    return to_camel(head) + dot + rest


def status_of(error: NurtureError) -> int:
    """The HTTP status of a known error."""
    return next(code for kind, code in _STATUS if isinstance(error, kind))


async def _nurture(request: Request, error: Any) -> Any:
    field = getattr(error, "field", None)  # a Conflict's
    return error_response(status_of(error), str(error), _camel(field))


async def _data(request: Request, error: Exception) -> Any:  # a DataError (Starlette's type)
    """A value the store refused that no check caught: told without the statement's values."""
    where = f"{request.method} {request.url.path}"
    log.error("the store refused a value on %s: %s", where, reason(error))
    return error_response(422, f"the store cannot keep a value of this request: {reason(error)}")


async def _unexpected(request: Request, error: Exception) -> Any:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response(500, f"unexpected {type(error).__name__} (see the server's log)")
