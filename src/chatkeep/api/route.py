"""The route class of every API route: strict about its query string, and reading a JSON body once.

What a dependency on every route would do costs the framework's dependency solving on every
request; done here it costs a set difference, and nothing when there is no query string."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from typing import Any

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from chatkeep.api.middleware import PARSED_JSON
from chatkeep.errors import InvalidInput


class _DecodedRequest(Request):
    async def json(self) -> Any:
        if PARSED_JSON in self.scope:
            return self.scope[PARSED_JSON]
        return await super().json()


class StrictRoute(APIRoute):
    """Refuses query parameters the route does not define (a misspelt `befor=` would otherwise be
    ignored silently and return the wrong page), before authentication and validation; and reads
    the JSON body api.middleware.StrictJson decoded (the same bytes, read by a stricter decoder to
    the same value) rather than decoding it a second time."""

    _query_names: frozenset[str] | None = None

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            if request.scope.get("query_string"):
                self._reject_unknown(request)
            return await handler(_DecodedRequest(request.scope, request.receive))

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
