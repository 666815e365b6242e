"""The call of search: the caller's messages and titles that hold every word of a query."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypedDict, Unpack

import httpx

from chatkeep.client.calls import Call
from chatkeep.models import Mode, Role, Segment  # Segment: the server's own snippet piece


class SearchScope(TypedDict, total=False):
    """What `search` narrows to (`user`: with a tenant API key), and its page."""

    workspace: str | None
    user: str | None
    limit: int
    cursor: str | None  # the previous page's `next_cursor`


@dataclass(frozen=True, slots=True)
class SearchHit:
    conversation_id: str
    workspace: str
    title: str
    message_id: str | None  # None: the title matched
    seq: int | None
    role: Role | None
    snippet: list[Segment]
    score: int

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SearchHit:
        message = d["message"]
        return cls(
            d["conversation_id"],
            d["workspace"],
            d["title"],
            message["id"] if message else None,
            message["seq"] if message else None,
            Role(message["role"]) if message else None,
            [Segment(s["text"], s["match"]) for s in d["snippet"]],
            d["score"],
        )


@dataclass(frozen=True, slots=True)
class SearchResults:
    hits: list[SearchHit]
    next_cursor: str | None
    partial_modes: list[Mode]  # modes whose conversations were not all searched

    @property
    def partial(self) -> bool:
        return bool(self.partial_modes)


def search(q: str, **scope: Unpack[SearchScope]) -> Call[SearchResults]:
    """Messages and titles of the caller's conversations that hold every word of `q`, best first;
    `workspace`, `user` (tenant API key), `limit` and `cursor` (the previous page's `next_cursor`)."""
    params = {"q": q, **{k: v for k, v in scope.items() if v is not None}}

    def read(r: httpx.Response) -> SearchResults:
        body = r.json()
        hits = [SearchHit.from_json(h) for h in body["items"]]
        return SearchResults(hits, body["next_cursor"], [Mode(m) for m in body["partial_modes"]])

    return Call("GET", "/v1/search", read, params=params)
