"""/docs: Swagger UI served from this server, assets included, so the page loads nothing from a CDN.

The assets come from the `fastapi-swagger` package (Swagger UI 5, which reads OpenAPI 3.1); only its
files are used. The validator badge is off: it would send the document to swagger.io.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

DOCS = "/docs"
ASSETS = "/docs/assets"


def install(app: FastAPI, openapi_url: str) -> None:
    app.mount(ASSETS, StaticFiles(packages=[("fastapi_swagger", "resources")]), name="docs-assets")

    @app.get(DOCS, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None},
        )
