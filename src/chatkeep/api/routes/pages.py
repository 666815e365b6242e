"""The demo chat page at `/` and the browser client's files at `/static/*`, from the package.
`/static/chatkeep.js` is the client's parts joined into one module (`api/client_module.py`).

Files are read once, on first use, and served with their MIME type and a content hash as ETag
(`If-None-Match` answers 304). Text files are compressed in the coding the client accepts, each
coding once per process and tighter than an answer, with an ETag of its own (`"<hash>-br"`).
Pages carry `Content-Security-Policy: default-src 'self'`: the page runs only the module files
served here, nothing inline and nothing from elsewhere.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass, field
from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from chatkeep.api import client_module
from chatkeep.api.compression import MIN_BYTES, OFFERED, choose, compress_once, compressible
from chatkeep.api.route import StrictRoute
from chatkeep.errors import NotFound
from chatkeep.models import ID_MAX_LENGTH, ID_PATTERN

router = APIRouter(route_class=StrictRoute, include_in_schema=False)

PAGE = "index.html"
CLIENT = "chatkeep.js"  # joined from static/client/ (api/client_module.py)
CSP = "default-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".ts": "text/plain; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}


@dataclass(slots=True)
class StaticFile:
    body: bytes
    media_type: str
    etag: str
    encoded: dict[str, bytes] = field(default_factory=dict)  # by coding, compressed on first use

    @property
    def compresses(self) -> bool:
        return len(self.body) >= MIN_BYTES and compressible(self.media_type)

    def tag(self, coding: str | None) -> str:
        return self.etag if coding is None else f'{self.etag[:-1]}-{coding}"'

    def body_in(self, coding: str | None) -> bytes:
        if coding is None:
            return self.body
        body = self.encoded.get(coding)
        if body is None:
            body = self.encoded[coding] = compress_once(coding, self.body)
        return body


class StaticFiles:
    """The files of `chatkeep/static` and the joined client module, loaded on first request (never
    at import)."""

    def __init__(self) -> None:
        self._files: dict[str, StaticFile] | None = None

    def get(self, name: str) -> StaticFile:
        if self._files is None:
            self._files = self._load()
        found = self._files.get(name)
        if found is None:
            raise NotFound(f"no static file {name!r}", code="not_found")
        return found

    @staticmethod
    def _load() -> dict[str, StaticFile]:
        bodies = {
            entry.name: entry.read_bytes()
            for entry in resources.files("chatkeep").joinpath("static").iterdir()
            if entry.is_file() and not entry.name.startswith(".")
        }
        bodies[CLIENT] = client_module.load()
        return {name: _static(name, body) for name, body in bodies.items()}


def _static(name: str, body: bytes) -> StaticFile:
    suffix = "." + name.rsplit(".", 1)[-1] if "." in name else ""
    media_type = TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
    digest = hashlib.sha256(body).hexdigest()[:20]
    return StaticFile(body, media_type, f'"{digest}"')


STATIC = StaticFiles()


def serve(request: Request, name: str, *, page: bool = False) -> Response:
    found = STATIC.get(name)
    headers = {
        # revalidate every time: a changed client reaches pages at once, an unchanged one costs a 304
        "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff",
    }
    if page:
        headers["Content-Security-Policy"] = CSP
        headers["Referrer-Policy"] = "no-referrer"
    coding = None
    if found.compresses:
        headers["Vary"] = "Accept-Encoding"
        coding = choose(request.headers.get("accept-encoding", ""))
    headers["ETag"] = found.tag(coding)
    # A cache holding the file in any coding has it whole: its tag answers 304, and the 304 names it.
    asked = _etags(request.headers.get("if-none-match", ""))
    held = [tag for tag in (found.tag(c) for c in (coding, None, *OFFERED)) if tag in asked]
    if held:
        headers["ETag"] = held[0]
        return Response(status_code=304, headers=headers)
    if coding is not None:
        headers["Content-Encoding"] = coding
    return Response(found.body_in(coding), media_type=found.media_type, headers=headers)


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


@router.get("/")
async def demo_page(
    request: Request,
    user: Annotated[str | None, Query(pattern=ID_PATTERN, max_length=ID_MAX_LENGTH)] = None,
    workspace: Annotated[str | None, Query(pattern=ID_PATTERN, max_length=ID_MAX_LENGTH)] = None,
    tabs: Annotated[str | None, Query(max_length=8)] = None,
) -> Response:
    """The demo chat page (`?user=`, `?workspace=`, `?tabs=1` are read by the page itself)."""
    return serve(request, PAGE, page=True)


@router.get("/sw.js")
async def service_worker(request: Request) -> Response:
    """The demo page's service worker, at the root so that it may serve the page offline."""
    response = serve(request, "sw.js")
    response.headers["Service-Worker-Allowed"] = "/"
    return response


@router.get("/static/{name}")
async def static_file(
    request: Request, name: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$")]
) -> Response:
    """A file of the browser client or the demo page."""
    return serve(request, name, page=name.endswith(".html"))
