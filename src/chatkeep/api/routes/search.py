"""/v1/search: full-text search over the caller's message text and conversation titles."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from chatkeep.api import paging
from chatkeep.api.deps import PrincipalDep, ServicesDep
from chatkeep.api.route import StrictRoute
from chatkeep.api.routes.common import answer, problems
from chatkeep.models import ID_MAX_LENGTH, ID_PATTERN, Mode, Role, SearchHit
from chatkeep.service.search import (
    MAX_QUERY_CHARS,
    MAX_SEARCH_PAGE,
    QUERY_PATTERN,
    SEARCH_CURSOR_MAX_LENGTH,
    SEARCH_CURSOR_PATTERN,
    encode_search_cursor,
)

router = APIRouter(route_class=StrictRoute, prefix="/v1/search", tags=["search"])


class SnippetSegment(BaseModel):
    text: str = Field(description="Plain text (never HTML): render it as text.")
    match: bool = Field(description="True for a word the query asked for.")


class HitMessage(BaseModel):
    id: str
    seq: int
    role: Role


class SearchHitOut(BaseModel):
    conversation_id: str
    workspace: str
    title: str
    message: HitMessage | None = Field(description="The message that matched; null when the title did.")
    snippet: list[SnippetSegment] = Field(
        description="The text around the first match, in order; join the texts to read it."
    )
    score: int = Field(description="Higher is a better match; hits come highest first.")


class SearchResults(BaseModel):
    items: list[SearchHitOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")
    partial: bool = Field(description="True when some conversations in scope were not searched.")
    partial_modes: list[Mode] = Field(
        description="The persistence modes whose conversations were not all searched: `ephemeral` "
        "beyond the bounded scan of Redis or during its outage, `durable` past the candidate cap."
    )


def hit_json(hit: SearchHit) -> dict[str, Any]:
    message = None
    if hit.message_id is not None and hit.role is not None:
        message = {"id": hit.message_id, "seq": hit.seq, "role": hit.role.value}
    return {
        "conversation_id": hit.conversation_id,
        "workspace": hit.workspace,
        "title": hit.title,
        "message": message,
        "snippet": [{"text": s.text, "match": s.match} for s in hit.snippet],
        "score": hit.score,
    }


@router.get("", response_model=SearchResults, responses=problems())
async def search(
    principal: PrincipalDep,
    services: ServicesDep,
    q: Annotated[
        str,
        Query(
            min_length=1,
            max_length=MAX_QUERY_CHARS,
            pattern=QUERY_PATTERN,
            description="Words to find, all of them, as whole words, in any case. Other characters "
            "(quotes, operators, `*`, `-`) only separate words.",
        ),
    ],
    workspace: Annotated[str | None, Query(pattern=ID_PATTERN, max_length=ID_MAX_LENGTH)] = None,
    user: Annotated[
        str | None, Query(pattern=ID_PATTERN, max_length=ID_MAX_LENGTH, description="Tenant API key only.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_SEARCH_PAGE)] = 20,
    cursor: Annotated[str | None, paging.cursor(SEARCH_CURSOR_PATTERN, SEARCH_CURSOR_MAX_LENGTH)] = None,
) -> JSONResponse:
    """Messages and titles of the caller's conversations (as the conversation list scopes them)
    that hold every word of `q`, best first: by score, then conversation id, then seq."""
    results = await services.search.search(
        principal, q, workspace=workspace, user=user, limit=limit, cursor=cursor
    )
    return answer(
        {
            "items": [hit_json(h) for h in results.hits],
            "next_cursor": encode_search_cursor(results.next_cursor),
            "partial": bool(results.partial_modes),
            "partial_modes": [m.value for m in results.partial_modes],
        }
    )
