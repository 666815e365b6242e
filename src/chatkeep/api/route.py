"""The route class of every API route: strict about its query string, reading a JSON body once, and
answering the busiest routes' valid requests without the framework's dependency solving.

What a dependency on every route would do costs the framework's dependency solving on every
request; done here it costs a set difference, and nothing when there is no query string."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any

from fastapi import Request, Response, params
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from chatkeep.api.deps import OF_REQUEST
from chatkeep.api.middleware import PARSED_JSON
from chatkeep.errors import InvalidInput

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
# Answers a request, or None when the framework's own handler must (the request is not valid).
Direct = Callable[[Request], Awaitable[Response | None]]


class _DecodedRequest(Request):
    async def json(self) -> Any:
        if PARSED_JSON in self.scope:
            return self.scope[PARSED_JSON]
        return await super().json()


class StrictRoute(APIRoute):
    """Refuses query parameters the route does not define (a misspelt `befor=` would otherwise be
    ignored silently and return the wrong page), before authentication and validation; and reads
    the JSON body api.middleware.StrictJson decoded (the same bytes, read by a stricter decoder to
    the same value) rather than decoding it a second time.

    A route whose endpoint takes only path parameters, a JSON body and dependencies of
    `api.deps.OF_REQUEST`, and returns a Response, answers valid requests directly: the same
    validators, the same dependency functions and the same endpoint, without the framework's
    general solving (about a quarter of an append's time). A request that fails validation goes
    to the framework's handler, so its errors, and the order they come in (authentication first),
    are the framework's."""

    _query_names: frozenset[str] | None = None

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()
        direct = _direct(self)

        async def strict(request: Request) -> Response:
            if request.scope.get("query_string"):
                self._reject_unknown(request)
            decoded = _DecodedRequest(request.scope, request.receive)
            if direct is not None and (response := await direct(decoded)) is not None:
                return response
            return await handler(decoded)

        return strict

    def _reject_unknown(self, request: Request) -> None:
        if self._query_names is None:
            self._query_names = frozenset(_walk_query_names(self.dependant))
        unknown = sorted(set(request.query_params) - self._query_names)
        if unknown:
            raise InvalidInput(f"unknown query parameter(s): {', '.join(unknown)}", code="unknown_parameter")


def _walk_query_names(dependant: Dependant) -> Iterator[str]:
    for param in dependant.query_params:
        yield param.alias
    for sub in dependant.dependencies:
        yield from _walk_query_names(sub)


def _direct(route: APIRoute) -> Direct | None:
    """The direct handler of a route, or None when the route needs what only the framework does."""
    dependant = route.dependant
    call = dependant.call
    needs_framework = (
        dependant.query_params,
        dependant.header_params,
        dependant.cookie_params,
        dependant.request_param_name,
        dependant.websocket_param_name,
        dependant.http_connection_param_name,
        dependant.response_param_name,
        dependant.background_tasks_param_name,
        dependant.security_scopes_param_name,
        len(dependant.body_params) > 1,
        getattr(route, "_embed_body_fields", True),  # unknown to this framework version: its handler
        any(isinstance(f.field_info, params.Form) for f in dependant.body_params),
        any(sub.call not in OF_REQUEST or not sub.name for sub in dependant.dependencies),
    )
    if call is None or any(needs_framework) or not inspect.iscoroutinefunction(call):
        return None
    try:
        returns = typing.get_type_hints(call).get("return")
    except NameError:  # an annotation that does not resolve: leave the route to the framework
        return None
    if not (inspect.isclass(returns) and issubclass(returns, Response)):
        return None  # the framework serialises what the endpoint returns
    paths = [(f, f.name, f.alias, ("path", f.alias)) for f in dependant.path_params]
    body = dependant.body_params[0] if dependant.body_params else None
    dependencies = [(sub.name or "", OF_REQUEST[sub.call]) for sub in dependant.dependencies]

    async def answer(request: Request) -> Response | None:
        values: dict[str, Any] = {}
        for field, name, alias, loc in paths:
            value, errors = field.validate(request.path_params.get(alias), loc=loc)
            if errors:
                return None
            values[name] = value
        if body is not None:
            # The framework reads a body as JSON only when its content type says so.
            if PARSED_JSON not in request.scope or "content-type" not in request.headers:
                return None
            value, errors = body.validate(request.scope[PARSED_JSON], loc=("body",))
            if errors or value is None:
                return None
            values[body.name] = value
        for name, of_request in dependencies:
            values[name] = await of_request(request)
        response: Response = await call(**values)
        return response

    return answer
