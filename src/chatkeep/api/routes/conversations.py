"""/v1/conversations: create, list, read (with the latest messages), update, delete."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Path, Query, Response
from fastapi.responses import JSONResponse

from chatkeep import codec
from chatkeep.api import paging
from chatkeep.api.deps import PrincipalDep, ServicesDep
from chatkeep.api.inputs import conversation_input
from chatkeep.api.paging import check_page_size, page_size
from chatkeep.api.problems import etag
from chatkeep.api.route import StrictRoute
from chatkeep.api.routes.common import answer, creates, problems
from chatkeep.api.schemas import (
    TAG_PATTERN,
    TEXT_SCHEMA,
    Conversation,
    ConversationCreate,
    ConversationList,
    ConversationUpdate,
    ConversationWithMessages,
    Heartbeat,
)
from chatkeep.errors import InvalidInput
from chatkeep.models import ID_MAX_LENGTH, ID_PATTERN, ConversationPatch
from chatkeep.service import ListFilters
from chatkeep.service.cursors import CURSOR_MAX_LENGTH, CURSOR_PATTERN, encode_cursor
from chatkeep.service.validation import MAX_TAG_CHARS

router = APIRouter(route_class=StrictRoute, prefix="/v1/conversations", tags=["conversations"])

IF_MATCH_PATTERN = r'^[ \t]*(\*|(W/)?"?[0-9]{1,18}"?)[ \t]*$'
ConversationId = Annotated[
    str, Path(pattern=ID_PATTERN, max_length=ID_MAX_LENGTH, description="Conversation id.")
]


@router.post("", **creates(Conversation, "Already existed (a retried create)", 403, 409))
async def create_conversation(
    body: ConversationCreate, principal: PrincipalDep, services: ServicesDep
) -> JSONResponse:
    """Create a conversation. 201 when new; 200 with the existing one when the caller retries an id it
    already created in the same workspace."""
    conversation, created = await services.chat.create_conversation(principal, conversation_input(body))
    headers = {"ETag": etag(conversation.version), "Location": f"/v1/conversations/{conversation.id}"}
    return answer(codec.conversation_json(conversation), 201 if created else 200, headers)


@router.get("", response_model=ConversationList, responses=problems())
async def list_conversations(
    principal: PrincipalDep,
    services: ServicesDep,
    workspace: Annotated[str | None, Query(pattern=ID_PATTERN, max_length=ID_MAX_LENGTH)] = None,
    user: Annotated[
        str | None, Query(pattern=ID_PATTERN, max_length=ID_MAX_LENGTH, description="Tenant API key only.")
    ] = None,
    starred: bool | None = None,
    pinned: bool | None = None,
    archived: bool | None = None,
    tag: Annotated[str | None, Query(max_length=MAX_TAG_CHARS, pattern=TAG_PATTERN)] = None,
    q: Annotated[
        str | None,
        Query(max_length=200, description="Case-insensitive title text.", json_schema_extra=TEXT_SCHEMA),
    ] = None,
    limit: Annotated[int, page_size()] = 20,
    cursor: Annotated[str | None, paging.cursor(CURSOR_PATTERN, CURSOR_MAX_LENGTH)] = None,
) -> JSONResponse:
    """The caller's conversations: pinned first, then by last activity, newest first."""
    page = await services.chat.list_conversations(
        principal,
        ListFilters(
            workspace=workspace, user=user, starred=starred, pinned=pinned, archived=archived, tag=tag, text=q
        ),
        limit=check_page_size(services.settings, "limit", limit),
        cursor=cursor,
    )
    return answer(
        {
            "items": [codec.conversation_json(c) for c in page.items],
            "next_cursor": encode_cursor(page.next_cursor),
        }
    )


@router.get("/{conversation_id}", response_model=ConversationWithMessages, responses=problems(404))
async def get_conversation(
    conversation_id: ConversationId,
    principal: PrincipalDep,
    services: ServicesDep,
    messages: Annotated[
        int, page_size(minimum=0, description="How many of the latest messages to include.")
    ] = 50,
) -> JSONResponse:
    """The conversation and its latest messages in one answer: what a page needs to reload."""
    messages = check_page_size(services.settings, "messages", messages)
    conversation, page = await services.chat.load(principal, conversation_id, messages)
    body = codec.conversation_json(conversation)
    body["messages"] = [codec.message_json(m) for m in page.messages]
    body["has_more_messages"] = page.has_more
    return answer(body, headers={"ETag": etag(conversation.version)})


@router.patch("/{conversation_id}", response_model=Conversation, responses=problems(404, 409, 412, 428))
async def update_conversation(
    conversation_id: ConversationId,
    body: ConversationUpdate,
    principal: PrincipalDep,
    services: ServicesDep,
    if_match: Annotated[
        str | None,
        Header(
            pattern=IF_MATCH_PATTERN, description='The version being changed, as in the ETag ("3"), or *.'
        ),
    ] = None,
) -> JSONResponse:
    """Change title, star, pin, archive or tags. Requires If-Match; a stale version answers 412.
    Pinning an ephemeral conversation stops its expiry (unless the tenant turned that off);
    unpinning restarts it. The persistence mode cannot change (409 persistence_immutable)."""
    patch = ConversationPatch(
        title=body.title,
        starred=body.starred,
        pinned=body.pinned,
        archived=body.archived,
        tags=tuple(body.tags) if body.tags is not None else None,
    )
    updated = await services.chat.update_conversation(
        principal, conversation_id, patch, parse_if_match(if_match), mode=body.mode
    )
    return answer(codec.conversation_json(updated), headers={"ETag": etag(updated.version)})


@router.delete("/{conversation_id}", status_code=204, responses=problems(404))
async def delete_conversation(
    conversation_id: ConversationId, principal: PrincipalDep, services: ServicesDep
) -> Response:
    """Delete the conversation and all its messages."""
    await services.chat.delete_conversation(principal, conversation_id)
    return Response(status_code=204)


@router.post("/{conversation_id}/heartbeat", response_model=Heartbeat, responses=problems(404))
async def heartbeat(
    conversation_id: ConversationId, principal: PrincipalDep, services: ServicesDep
) -> JSONResponse:
    """The page is still open: slide the conversation's expiry from now and mark it active. Pages
    send one every 30 seconds or so while visible; an expired conversation answers 404 `expired`."""
    conversation = await services.chat.heartbeat(principal, conversation_id)
    return answer(
        {
            "id": conversation.id,
            "last_activity_at": codec.iso(conversation.last_activity_at),
            "expires_at": codec.iso(conversation.expires_at),
        }
    )


def parse_if_match(value: str | None) -> int | Literal["*"] | None:
    """`"3"`, `W/"3"`, `3` -> 3; `*` -> `*`; absent -> None."""
    if value is None:
        return None
    text = value.strip(" \t")
    if text == "*":
        return "*"
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise InvalidInput(
            'If-Match must be a version number such as "3" (from the ETag), or *', code="invalid_if_match"
        )
    return int(text)
