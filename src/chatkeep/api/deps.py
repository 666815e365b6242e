"""FastAPI dependencies: the services, and the authenticated, rate-checked caller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

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
