"""FastAPI dependencies: the services, and the authenticated, rate-checked caller."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from chatkeep.api.metrics import Metrics
from chatkeep.errors import InvalidInput
from chatkeep.service import Principal, Services

bearer = HTTPBearer(auto_error=False, description="A user token (JWT) or a tenant API key (ck_...).")


_known_query: dict[int, frozenset[str]] = {}


def _query_names(route: APIRoute) -> frozenset[str]:
    names = _known_query.get(id(route))
    if names is None:
        names = frozenset(_walk_query_names(route.dependant))
        _known_query[id(route)] = names
    return names


def _walk_query_names(dependant: Dependant) -> Iterator[str]:
    for param in dependant.query_params:
        yield param.alias
    for sub in dependant.dependencies:
        yield from _walk_query_names(sub)


async def reject_unknown_query(request: HTTPConnection) -> None:
    """Refuse query parameters a route does not define: a misspelt `befor=` would otherwise be
    ignored silently and return the wrong page."""
    if not request.scope.get("query_string"):
        return
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    unknown = sorted(set(request.query_params) - _query_names(route))
    if unknown:
        raise InvalidInput(f"unknown query parameter(s): {', '.join(unknown)}", code="unknown_parameter")


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


ServicesDep = Annotated[Services, Depends(get_services)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
