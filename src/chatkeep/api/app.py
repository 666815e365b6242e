"""The ASGI application: create_app wires settings, services, routes, middleware and problems."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.types import Receive, Scope, Send

from chatkeep import __version__
from chatkeep.api import docs, problems, ws
from chatkeep.api.compression import Compression
from chatkeep.api.metrics import Metrics
from chatkeep.api.middleware import BodyLimit, RequestMetrics, StrictJson
from chatkeep.api.openapi import document
from chatkeep.api.route import StrictRoute
from chatkeep.api.routes import conversations, dev, health, messages, pages, search, sessions, transfer
from chatkeep.api.routes import settings as settings_routes
from chatkeep.bootstrap import build_services
from chatkeep.config import Settings
from chatkeep.service import Services

DESCRIPTION = """Chat conversations that survive reloads, restarts, outages and offline spells.

Authenticate with `Authorization: Bearer <token>`: a user token (JWT signed with the tenant's secret)
or a tenant API key (`ck_...`). Every error is `application/problem+json` with a stable `code`."""


class App(FastAPI):
    """The FastAPI app, with WS /v1/ws served before its middleware and router (see api/ws)."""

    def __init__(self, services: Services, **options: Any) -> None:
        super().__init__(**options)
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == ws.PATH:
            await ws.Connection(self.services, scope, receive, send).serve()
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None, *, services: Services | None = None) -> FastAPI:
    """The chatkeep app. Stores connect (and migrate) when the app starts, in its lifespan."""
    settings = settings or Settings()
    services = services or build_services(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await services.start()
        try:
            yield
        finally:
            await services.stop()

    app = App(
        services,
        title="chatkeep",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url=None,  # served by api/docs.py, with its assets
        redoc_url=None,
        # Off, the framework skips asking for OpenTelemetry providers on every request.
        telemetry=None if settings.opentelemetry else {"tracing": False, "metrics": False, "logs": False},
    )
    metrics = Metrics()
    app.state.services = services
    app.state.metrics = metrics
    problems.install(app)
    app.router.route_class = StrictRoute  # for the routes added to the app itself (/docs)
    for module in (conversations, messages, sessions, settings_routes, dev, health, pages, search, transfer):
        app.include_router(module.router)
    docs.install(app, "/openapi.json")
    app.add_middleware(StrictJson)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(Compression)
    app.add_middleware(RequestMetrics, metrics=metrics)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            app.openapi_schema = document(schema, max_page_size=services.settings.max_page_size)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
