"""FastAPI dependencies: the services, and the authenticated, rate-checked caller."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from chatkeep.api.metrics import Metrics
from chatkeep.service import Principal, Services

bearer = HTTPBearer(auto_error=False, description="A user token (JWT) or a tenant API key (ck_...).")


async def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def get_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]
) -> Principal:
    services: Services = request.app.state.services
    address = request.client.host if request.client else None
    principal = await services.authenticate(credentials.credentials if credentials else None, address)
    services.check_rate(principal)
    return principal


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated, rate-checked caller with the services and metrics: what the busiest routes
    take as one dependency (each dependency costs the framework's solving on every request)."""

    principal: Principal
    services: Services
    metrics: Metrics


async def get_caller(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]
) -> Caller:
    principal = await get_principal(request, credentials)
    state = request.app.state
    return Caller(principal, state.services, state.metrics)


ServicesDep = Annotated[Services, Depends(get_services)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
CallerDep = Annotated[Caller, Depends(get_caller)]


async def _caller_of(request: Request) -> Caller:
    return await get_caller(request, await bearer(request))


async def _principal_of(request: Request) -> Principal:
    return await get_principal(request, await bearer(request))


# The dependencies above as functions of the request alone, for the routes that answer without the
# framework's dependency solving (api/route.py): each computes what its dependency would.
OF_REQUEST: dict[Any, Callable[[Request], Awaitable[Any]]] = {
    get_caller: _caller_of,
    get_principal: _principal_of,
    get_services: get_services,
    get_metrics: get_metrics,
}
