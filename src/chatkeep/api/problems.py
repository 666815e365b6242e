"""Errors to HTTP problems (RFC 9457, `application/problem+json`) and WebSocket close codes.

This is the one place that decides which status or close code an error becomes. Every problem
carries a stable machine-readable `code`.
"""

from __future__ import annotations

import logging
import math
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from chatkeep import codec
from chatkeep.errors import (
    ChatkeepError,
    ConfigError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    PreconditionRequired,
    QuotaExceeded,
    RateLimited,
    StorageFull,
    StoreUnavailable,
    TooLarge,
    Unauthenticated,
    UnsupportedMediaType,
    VersionMismatch,
)
from chatkeep.models import Message

PROBLEM_MEDIA_TYPE = "application/problem+json"
log = logging.getLogger("chatkeep.api")

# Most specific first: the first class an error is an instance of decides its status.
STATUSES: list[tuple[type[ChatkeepError], int]] = [
    (Unauthenticated, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (VersionMismatch, 412),
    (PreconditionRequired, 428),
    (TooLarge, 413),
    (QuotaExceeded, 409),
    (Conflict, 409),
    (RateLimited, 429),
    (StorageFull, 507),
    (UnsupportedMediaType, 415),
    (InvalidInput, 422),
    (StoreUnavailable, 503),
    (ConfigError, 500),
]

# WebSocket close codes (4000-4999 are the application's): 4000 + the HTTP status where one fits.
CLOSE_CODES: list[tuple[type[ChatkeepError], int]] = [(cls, 4000 + status) for cls, status in STATUSES]


# What clients are told of a server-side failure; the error's own detail goes to the log only.
PUBLIC_DETAILS = {
    503: "a backing store is unavailable right now; retry shortly",
    500: "the server cannot do this; the error has been logged",
}


def public_detail(exc: ChatkeepError) -> str:
    """The detail a client sees: the error's own for a client error, a generic one (or the error's
    `public` text) for a server error, whose detail may name hosts, users or drivers."""
    status = status_for(exc)
    if status < 500:
        return exc.detail
    return exc.public or PUBLIC_DETAILS.get(status, PUBLIC_DETAILS[500])


def status_for(exc: ChatkeepError) -> int:
    return next((status for cls, status in STATUSES if isinstance(exc, cls)), 500)


def close_code_for(exc: ChatkeepError) -> int:
    return next((code for cls, code in CLOSE_CODES if isinstance(exc, cls)), 1011)


def problem(
    status: int, code: str, detail: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {
        "type": f"urn:chatkeep:problem:{code}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def problem_for(exc: ChatkeepError) -> JSONResponse:
    status = status_for(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    elif isinstance(exc, VersionMismatch):
        headers["ETag"] = etag(exc.current_version)
    elif isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="chatkeep"'
    extra: dict[str, Any] = {
        k: v for k, v in exc.extra.items() if isinstance(v, (str, int, float, bool)) or v is None
    }
    extra.update({k: codec.message_json(v) for k, v in exc.extra.items() if isinstance(v, Message)})
    return problem(status, exc.code, public_detail(exc), headers=headers, **extra)


def etag(version: int) -> str:
    return f'"{version}"'


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into a problem response."""

    @app.exception_handler(ChatkeepError)
    async def chatkeep_error(_request: Request, exc: ChatkeepError) -> JSONResponse:
        if status_for(exc) >= 500:
            log.warning("%s %s: %s: %s", _request.method, _request.url.path, exc.code, exc.detail)
        return problem_for(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "loc": [str(part) for part in e.get("loc", ())],
                "msg": str(e.get("msg", "")),
                "type": str(e.get("type", "")),
            }
            for e in exc.errors()
        ]
        if any(e["type"] == "json_invalid" for e in errors):
            return problem(400, "invalid_json", "the body is not valid JSON")
        return problem(422, "invalid_request", "the request does not match the API schema", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # chatkeep raises none of these itself: they come from routing (404, 405) and from the
        # framework failing to decode a body (400: invalid UTF-8, absurd nesting).
        if isinstance(exc.__cause__, ChatkeepError):  # e.g. the body limit tripped while reading
            return problem_for(exc.__cause__)
        if exc.status_code == 400:
            return problem(400, "invalid_json", "the body is not valid UTF-8 JSON")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(_allowed_methods(request))
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        detail = {404: "no such endpoint; see /openapi.json", 405: "method not allowed here"}.get(
            exc.status_code, str(exc.detail)
        )
        return problem(exc.status_code, code, detail, headers=headers)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return problem(500, "internal_error", "an unexpected error occurred; it has been logged")


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette names only the first route's)."""
    methods: set[str] = set()
    for route in request.app.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        route_methods = getattr(route, "methods", None)
        if match is not Match.NONE and route_methods:
            methods |= set(route_methods)
    return sorted(methods)
