"""What every route module shares: documented problem responses and JSON answers."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import JSONResponse
from pydantic import BaseModel

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


def creates(model: type[BaseModel], existed: str, *statuses: int) -> dict[str, Any]:
    """The route options of a write that answers `model` with 201 when it stores something, and with
    200 when everything was already stored (`existed` says when: a retry, which changes nothing)."""
    return {
        "response_model": model,
        "status_code": 201,
        "responses": {200: {"model": model, "description": existed}, **problems(*statuses)},
    }


class FastJSONResponse(JSONResponse):
    """JSON rendered by orjson: several times faster than the standard library on message pages."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def answer(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    """A JSON answer built by `chatkeep.codec`, sent as is (its shape is checked by the tests)."""
    return FastJSONResponse(body, status_code=status, headers=headers)
