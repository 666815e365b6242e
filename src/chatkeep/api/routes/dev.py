"""Dev mode: a token of the demo tenant for the demo page and curl, with no set-up."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from chatkeep.api.deps import ServicesDep
from chatkeep.api.routes.common import problems
from chatkeep.api.schemas import DevToken
from chatkeep.errors import Forbidden
from chatkeep.models import ID_MAX_LENGTH, ID_PATTERN
from chatkeep.service.tenants import DEMO_TENANT

router = APIRouter(prefix="/v1/dev", tags=["dev"])
WORKSPACE_PATTERN = rf"^\*$|{ID_PATTERN}"


@router.get("/token", response_model=DevToken, responses=problems(403))
async def dev_token(
    services: ServicesDep,
    user: Annotated[str, Query(pattern=ID_PATTERN, max_length=ID_MAX_LENGTH)] = "demo-user",
    workspace: Annotated[
        str | None,
        Query(
            pattern=WORKSPACE_PATTERN,
            max_length=ID_MAX_LENGTH,
            description="The workspace allowed; `*` or omitted: all.",
        ),
    ] = None,
) -> JSONResponse:
    """A user token of the `demo` tenant. Only in dev mode (on by default when bound to loopback)."""
    settings = services.settings
    if not settings.dev_enabled:
        raise Forbidden(
            "dev mode is off on this server (it is on by default only on loopback); "
            "set CHATKEEP_DEV_MODE=1 to enable it",
            code="dev_mode_off",
        )
    workspaces = [workspace or "*"]
    ttl = settings.token_max_age_seconds
    token = await services.tenants.dev_token(user, workspaces, ttl)
    return JSONResponse(
        {"token": token, "tenant": DEMO_TENANT, "user": user, "workspaces": workspaces, "expires_in": ttl}
    )
