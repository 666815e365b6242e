"""Dev mode: a token of the demo tenant for the demo page and curl, with no set-up."""

from __future__ import annotations

import ipaddress
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from chatkeep.api.deps import ServicesDep
from chatkeep.api.route import StrictRoute
from chatkeep.api.routes.common import problems
from chatkeep.api.schemas import DevToken
from chatkeep.errors import Forbidden
from chatkeep.models import ID_MAX_LENGTH, ID_PATTERN
from chatkeep.service.tenants import DEMO_TENANT

router = APIRouter(route_class=StrictRoute, prefix="/v1/dev", tags=["dev"])
WORKSPACE_PATTERN = rf"^\*$|{ID_PATTERN}"


def is_loopback_host(host: str) -> bool:
    """Whether a Host header names this machine's loopback: `localhost`, `127.0.0.1` (any of
    127/8) or `[::1]`, with or without a port."""
    name, port = host, ""
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            return False
        name, port = host[1:end], host[end + 1 :]
        if port and not port.startswith(":"):
            return False
        port = port[1:]
    elif ":" in host:
        name, port = host.rsplit(":", 1)
    if port and not (port.isascii() and port.isdigit()):
        return False
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@router.get("/token", response_model=DevToken, responses=problems(403))
async def dev_token(
    request: Request,
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
    # A page on another origin whose name an attacker points at 127.0.0.1 (DNS rebinding) reaches
    # this server as same-origin; its requests still carry the attacker's name as Host.
    if not is_loopback_host(request.headers.get("host", "")):
        raise Forbidden(
            "dev tokens are handed out only to requests addressed to localhost, 127.0.0.1 or [::1]",
            code="dev_host_not_loopback",
        )
    workspaces = [workspace or "*"]
    ttl = settings.token_max_age_seconds
    token = await services.tenants.dev_token(user, workspaces, ttl)
    return JSONResponse(
        {"token": token, "tenant": DEMO_TENANT, "user": user, "workspaces": workspaces, "expires_in": ttl}
    )
