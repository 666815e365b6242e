"""What every route module shares: documented problem responses and JSON answers."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from chatkeep.api.middleware import PARSED_JSON
from chatkeep.api.schemas import Problem

PROBLEM_STATUSES = {
    400: "Malformed request (invalid JSON, bad UTF-8)",
    401: "Missing, invalid or expired credentials",
    403: "Not allowed for this kind of caller",
    404: "No such conversation for this caller",
    409: "Conflicts with the current state or a count limit",
    412: "If-Match does not match the current version",
    413: "Body, message or batch too large",
    415: "Unsupported body media type",
    422: "A value breaks the API's rules",
    428: "If-Match is required",
    429: "Too many requests; see Retry-After",
    503: "A store is unavailable",
    507: "The memory budget for `none` and in-memory `ephemeral` data is used up",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problem responses a route can give (the always-possible ones added)."""
    wanted = {400, 401, 422, 429, 503, 507, *statuses}
    return {s: {"model": Problem, "description": PROBLEM_STATUSES[s]} for s in sorted(wanted)}


class FastJSONResponse(JSONResponse):
    """JSON rendered by orjson: several times faster than the standard library on message pages."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def answer(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    """A JSON answer built by `chatkeep.codec`, sent as is (its shape is checked by the tests)."""
    return FastJSONResponse(body, status_code=status, headers=headers)


class _DecodedRequest(Request):
    async def json(self) -> Any:
        if PARSED_JSON in self.scope:
            return self.scope[PARSED_JSON]
        return await super().json()


class JsonRoute(APIRoute):
    """A route that reads the JSON body api.middleware.StrictJson decoded (the same bytes, read by a
    stricter decoder to the same value) rather than decoding it a second time."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def decoded(request: Request) -> Response:
            return await handler(_DecodedRequest(request.scope, request.receive))

        return decoded
