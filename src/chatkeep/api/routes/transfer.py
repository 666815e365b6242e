"""/v1/export and /v1/import: a caller's conversations out as a file, and files in."""

from __future__ import annotations

import io
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel

from chatkeep.api.deps import PrincipalDep, ServicesDep
from chatkeep.api.route import StrictRoute
from chatkeep.api.routes.common import answer, problems
from chatkeep.errors import InvalidInput
from chatkeep.models import ID_MAX_LENGTH, ID_PATTERN
from chatkeep.service import Services
from chatkeep.service.limits import Limits
from chatkeep.service.transfer import MEDIA_TYPES, Exporter, Importer, Owner, Selection, Summary
from chatkeep.service.transfer.export import EXTENSIONS

router = APIRouter(route_class=StrictRoute, prefix="/v1", tags=["transfer"])

IdQuery = Annotated[str | None, Query(pattern=ID_PATTERN, max_length=ID_MAX_LENGTH)]
FILENAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$"


class ImportFailure(BaseModel):
    file: str
    record: str
    id: str | None
    field: str
    code: str
    detail: str


class ImportSummary(BaseModel):
    """Conversations stored, already there with the same content (skipped), and failed."""

    imported: int
    skipped: int
    failed: int
    messages: int
    errors: list[ImportFailure]


def importer(services: Services) -> Importer:
    return Importer(services.router, services.events, Limits.from_settings(services.settings))


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The export, streamed",
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "application/x-ndjson": {"schema": {"type": "string"}},
                "text/markdown": {"schema": {"type": "string"}},
            },
        },
        **problems(404),
    },
)
async def export(
    principal: PrincipalDep,
    services: ServicesDep,
    format: Literal["json", "jsonl", "markdown"] = "json",
    conversation: IdQuery = None,
    workspace: IdQuery = None,
    user: Annotated[
        str | None, Query(pattern=ID_PATTERN, max_length=ID_MAX_LENGTH, description="Tenant API key only.")
    ] = None,
) -> StreamingResponse:
    """The caller's conversations with all their messages: chatkeep JSON (`json`), JSON Lines
    (`jsonl`: a conversation record, then its message records) or a Markdown transcript. One
    conversation, or those of a workspace or a user; with a user token only its own."""
    selection = Selection(conversation=conversation, workspace=workspace, user=user)
    opened = await Exporter(services.router).open(principal, selection)
    name = f"chatkeep-export.{EXTENSIONS[format]}"
    return StreamingResponse(
        opened.chunks(format),
        media_type=MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.post(
    "/import",
    response_model=ImportSummary,
    responses=problems(403, 413),
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "A chatkeep export (JSON or JSON Lines), a ChatGPT `conversations.json`, or an "
            "OpenAI-style message list, up to the request body limit (`chatkeep import` takes any size).",
            "content": {"application/json": {"schema": {}}},
        }
    },
)
async def import_file(
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
    workspace: IdQuery = None,
    user: Annotated[
        str | None,
        Query(pattern=ID_PATTERN, max_length=ID_MAX_LENGTH, description="Tenant API key only."),
    ] = None,
    filename: Annotated[
        str, Query(pattern=FILENAME_PATTERN, description="Names the file in errors.")
    ] = "upload",
) -> JSONResponse:
    """Import conversations, each all or nothing; one already there with the same content is
    skipped. Answers what was imported, skipped and failed (a failure names the record and field)."""
    body = await request.body()
    if not body.strip():
        raise InvalidInput("the body is empty: send the file to import", code="empty_body")
    try:
        text = io.StringIO(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise InvalidInput("the file is not valid UTF-8", code="invalid_json") from None
    summary = Summary()
    owner = Owner(user=user if principal.user is None else None, workspace=workspace)
    await importer(services).import_file(principal, filename, text, owner, summary)
    return answer(summary.to_json())
