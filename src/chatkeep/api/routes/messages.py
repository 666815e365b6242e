"""/v1/conversations/{id}/messages: append (one or a batch, idempotent by id) and page by seq."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse

from chatkeep import codec
from chatkeep.api.deps import Caller, CallerDep, PrincipalDep, ServicesDep
from chatkeep.api.inputs import message_input, usage_of
from chatkeep.api.paging import check_page_size, page_size
from chatkeep.api.route import StrictRoute
from chatkeep.api.routes.common import answer, creates, problems
from chatkeep.api.routes.conversations import ConversationId
from chatkeep.api.schemas import (
    MAX_SEQ,
    AppendedMessage,
    BatchResult,
    Delta,
    DeltaCreate,
    Message,
    MessageBatchCreate,
    MessageCreate,
    MessageList,
    StreamFinish,
)
from chatkeep.models import ID_MAX_LENGTH, ID_PATTERN, AppendOutcome, MessageStatus

router = APIRouter(route_class=StrictRoute, prefix="/v1/conversations/{conversation_id}", tags=["messages"])


async def _append(caller: Caller, conversation_id: str, bodies: list[MessageCreate]) -> AppendOutcome:
    outcome = await caller.services.chat.append_messages(
        caller.principal, conversation_id, [message_input(b) for b in bodies]
    )
    created = outcome.created_count
    caller.metrics.count_appends(outcome.conversation.mode.value, created, len(outcome.results) - created)
    return outcome


@router.post(
    "/messages",
    **creates(AppendedMessage, "This id was already stored: the stored message", 404, 409, 413),
)
async def append_message(
    conversation_id: ConversationId,
    body: MessageCreate,
    caller: CallerDep,
) -> JSONResponse:
    """Append a message. 201 when stored; 200 with the stored message when its id was already
    appended (a retry), which changes nothing."""
    outcome = await _append(caller, conversation_id, [body])
    (result,) = outcome.results
    reply = codec.message_json(result.message)
    if outcome.provisional:
        reply["provisional"] = True
    return answer(reply, 201 if result.created else 200)


BATCH = creates(BatchResult, "Every id was already stored", 404, 409, 413)


@router.post("/messages:batch", **BATCH)
@router.post("/messages/batch", **BATCH, include_in_schema=False)
async def append_batch(
    conversation_id: ConversationId,
    body: MessageBatchCreate,
    caller: CallerDep,
) -> JSONResponse:
    """Append several messages in order, all or nothing (for offline sync). Ids already stored are
    answered with the stored message (`created` false) and not stored again."""
    outcome = await _append(caller, conversation_id, body.messages)
    results = [{"created": r.created, "message": codec.message_json(r.message)} for r in outcome.results]
    reply: dict[str, object] = {"results": results}
    if outcome.provisional:
        reply["provisional"] = True
    return answer(reply, 201 if outcome.created_count else 200)


MessageId = Annotated[str, Path(pattern=ID_PATTERN, max_length=ID_MAX_LENGTH, description="Message id.")]


@router.post("/messages/{message_id}/deltas", response_model=Delta, responses=problems(404, 409, 413))
async def append_delta(
    conversation_id: ConversationId,
    message_id: MessageId,
    body: DeltaCreate,
    principal: PrincipalDep,
    services: ServicesDep,
) -> JSONResponse:
    """Grow a streaming reply by a piece of text. Answers once it is stored; followers receive it as
    `message.delta` with its offset. 409 `not_streaming` once the reply is finished, 409
    `offset_mismatch` (with the stored `length`) when `offset` does not continue the content."""
    extension = await services.streams.delta(
        principal, conversation_id, message_id, body.text, offset=body.offset
    )
    message = extension.message
    return answer(
        {
            "message_id": message.id,
            "seq": message.seq,
            "offset": extension.offset,
            "appended": extension.appended,
            "length": len(message.content),
        }
    )


@router.post("/messages/{message_id}/finish", response_model=Message, responses=problems(404, 409))
async def finish_stream(
    conversation_id: ConversationId,
    message_id: MessageId,
    body: StreamFinish,
    principal: PrincipalDep,
    services: ServicesDep,
) -> JSONResponse:
    """End a streaming reply as `complete` or `interrupted`, with its token usage. Repeating the same
    finish answers the message unchanged."""
    message = await services.streams.finish(
        principal, conversation_id, message_id, MessageStatus(body.status), usage_of(body.usage)
    )
    return answer(codec.message_json(message))


@router.get("/messages", response_model=MessageList, responses=problems(404, 409))
async def list_messages(
    conversation_id: ConversationId,
    principal: PrincipalDep,
    services: ServicesDep,
    before: Annotated[
        int | None, Query(ge=0, le=MAX_SEQ, description="Messages with seq below this.")
    ] = None,
    after: Annotated[int | None, Query(ge=0, le=MAX_SEQ, description="Messages with seq above this.")] = None,
    limit: Annotated[int, page_size()] = 50,
) -> JSONResponse:
    """A page of messages by seq, oldest first: the latest, those before or after a seq, or (with
    both) the first of those between two seqs."""
    limit = check_page_size(services.settings, "limit", limit)
    page = await services.chat.read_messages(
        principal, conversation_id, before=before, after=after, limit=limit
    )
    return answer({"messages": [codec.message_json(m) for m in page.messages], "has_more": page.has_more})
