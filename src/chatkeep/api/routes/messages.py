"""/v1/conversations/{id}/messages: append (one or a batch, idempotent by id) and page by seq."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from chatkeep import codec
from chatkeep.api.deps import MetricsDep, PrincipalDep, ServicesDep
from chatkeep.api.metrics import Metrics
from chatkeep.api.routes.common import answer, problems
from chatkeep.api.routes.conversations import ConversationId
from chatkeep.api.schemas import MAX_SEQ, BatchResult, Message, MessageBatchCreate, MessageCreate, MessageList
from chatkeep.models import AppendOutcome, Usage
from chatkeep.service import MessageInput, Principal, Services

router = APIRouter(prefix="/v1/conversations/{conversation_id}", tags=["messages"])


def _input(body: MessageCreate) -> MessageInput:
    usage = Usage(body.usage.input_tokens, body.usage.output_tokens) if body.usage else Usage()
    return MessageInput(
        role=body.role,
        content=body.content,
        id=body.id,
        parts=body.parts,
        metadata=body.metadata,
        usage=usage,
    )


async def _append(
    services: Services,
    metrics: Metrics,
    principal: Principal,
    conversation_id: str,
    bodies: list[MessageCreate],
) -> AppendOutcome:
    outcome = await services.chat.append_messages(principal, conversation_id, [_input(b) for b in bodies])
    mode = outcome.conversation.mode.value
    created = outcome.created_count
    metrics.appended.labels(mode).inc(created)
    metrics.replayed.labels(mode).inc(len(outcome.results) - created)
    return outcome


@router.post(
    "/messages",
    response_model=Message,
    status_code=201,
    responses={
        200: {"model": Message, "description": "This id was already stored: the stored message"},
        **problems(404, 409, 413),
    },
)
async def append_message(
    conversation_id: ConversationId,
    body: MessageCreate,
    principal: PrincipalDep,
    services: ServicesDep,
    metrics: MetricsDep,
) -> JSONResponse:
    """Append a message. 201 when stored; 200 with the stored message when its id was already
    appended (a retry), which changes nothing."""
    outcome = await _append(services, metrics, principal, conversation_id, [body])
    (result,) = outcome.results
    return answer(codec.message_json(result.message), 201 if result.created else 200)


BATCH_RESPONSES = {
    200: {"model": BatchResult, "description": "Every id was already stored"},
    **problems(404, 409, 413),
}


@router.post("/messages:batch", response_model=BatchResult, status_code=201, responses=BATCH_RESPONSES)
@router.post(
    "/messages/batch",
    response_model=BatchResult,
    status_code=201,
    responses=BATCH_RESPONSES,
    include_in_schema=False,
)
async def append_batch(
    conversation_id: ConversationId,
    body: MessageBatchCreate,
    principal: PrincipalDep,
    services: ServicesDep,
    metrics: MetricsDep,
) -> JSONResponse:
    """Append several messages in order, all or nothing (for offline sync). Ids already stored are
    answered with the stored message (`created` false) and not stored again."""
    outcome = await _append(services, metrics, principal, conversation_id, body.messages)
    results = [{"created": r.created, "message": codec.message_json(r.message)} for r in outcome.results]
    return answer({"results": results}, 201 if outcome.created_count else 200)


@router.get("/messages", response_model=MessageList, responses=problems(404))
async def list_messages(
    conversation_id: ConversationId,
    principal: PrincipalDep,
    services: ServicesDep,
    before: Annotated[
        int | None, Query(ge=0, le=MAX_SEQ, description="Messages with seq below this.")
    ] = None,
    after: Annotated[int | None, Query(ge=0, le=MAX_SEQ, description="Messages with seq above this.")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> JSONResponse:
    """A page of messages by seq, oldest first: the latest, those before or after a seq, or (with
    both) the first of those between two seqs."""
    page = await services.chat.read_messages(
        principal, conversation_id, before=before, after=after, limit=limit
    )
    return answer({"messages": [codec.message_json(m) for m in page.messages], "has_more": page.has_more})
