"""/v1/sessions/cleanup: delete a user's sessions all at once, when idle, or by id; also from a
closing page through navigator.sendBeacon."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import ValidationError

from chatkeep.api.deps import ServicesDep, bearer
from chatkeep.api.route import StrictRoute
from chatkeep.api.routes.common import answer, problems
from chatkeep.api.schemas import CleanupRequest, CleanupResult
from chatkeep.errors import UnsupportedMediaType
from chatkeep.models import Mode
from chatkeep.service.sessions import Cleanup, Strategy, cleanup

router = APIRouter(route_class=StrictRoute, prefix="/v1/sessions", tags=["sessions"])

BODY_SCHEMA = CleanupRequest.model_json_schema()
BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": BODY_SCHEMA}, "text/plain": {"schema": BODY_SCHEMA}},
    }
}


@router.post("/cleanup", response_model=CleanupResult, responses=problems(403, 415), openapi_extra=BODY)
async def cleanup_sessions(
    request: Request,
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> JSONResponse:
    """Delete the caller's conversations chosen by `strategy`: `all`, `inactive` (idle longer than
    `idle_seconds`, 1 hour by default) or `specific` (`ids`). `all` and `inactive` take session modes
    (`ephemeral`, `none`) unless `modes` says otherwise. Answers the ids deleted.

    A closing page can call it with `navigator.sendBeacon(url, JSON.stringify({token, strategy}))`:
    the body then arrives as text/plain, with the token in it instead of an Authorization header."""
    body = await _read(request)
    credential = credentials.credentials if credentials else body.token
    principal = await services.authenticate(credential, request.client.host if request.client else None)
    services.check_rate(principal)
    deleted = await cleanup(
        services.chat,
        principal,
        Cleanup(
            strategy=Strategy(body.strategy),
            ids=tuple(body.ids),
            idle_seconds=body.idle_seconds,
            workspace=body.workspace,
            user=body.user,
            modes=frozenset(Mode(m) for m in body.modes),
        ),
    )
    return answer({"deleted": [c.id for c in deleted], "count": len(deleted)})


async def _read(request: Request) -> CleanupRequest:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in ("application/json", "text/plain"):
        raise UnsupportedMediaType("send the body as application/json, or as text/plain (sendBeacon)")
    raw = await request.body()
    try:
        data: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise RequestValidationError(
            [{"type": "json_invalid", "loc": ("body",), "msg": "invalid JSON"}]
        ) from None
    try:
        return CleanupRequest.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False, include_context=False)]
        ) from None
