"""SearchService: full-text search over what a caller may list, across every store.

The scope is the conversation list's: a tenant API key searches the tenant (optionally one user's
conversations), a user token only its own conversations in the workspaces it allows; either may
narrow to one workspace. Each store searches what it holds (see `Store.search`) and the pages are
merged in search order. A store other than the durable one that cannot answer is left out, and
the answer names the modes it holds as partly searched.

Search cursors are `<score>.<seq>.<conversation id>`: every string matching SEARCH_CURSOR_PATTERN
is a valid position, so the API document says exactly which cursors are accepted.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from chatkeep.domain.search import search_terms
from chatkeep.errors import InvalidInput, StoreUnavailable
from chatkeep.models import ID_MAX_LENGTH, Mode, SearchCursor, SearchHit, SearchQuery, search_key
from chatkeep.service.auth import Principal
from chatkeep.service.cursors import cursor_parts
from chatkeep.service.routing import StoreRouter
from chatkeep.service.validation import check_id, check_text
from chatkeep.stores.base import Store

log = logging.getLogger("chatkeep.search")

MAX_QUERY_CHARS = 500
MAX_SEARCH_PAGE = 100
# At least one character that is not whitespace, and no NUL.
QUERY_PATTERN = r"^[^\x00]*[^\x00\s][^\x00]*$"
SEARCH_CURSOR_PATTERN = r"^(0|[1-9][0-9]{0,17})\.(0|[1-9][0-9]{0,17})\.[A-Za-z0-9_][A-Za-z0-9_.@+\-]{0,127}$"
SEARCH_CURSOR_RE = re.compile(SEARCH_CURSOR_PATTERN)
SEARCH_CURSOR_MAX_LENGTH = 18 + 1 + 18 + 1 + ID_MAX_LENGTH


@dataclass(frozen=True, slots=True)
class SearchResults:
    """A page of hits in search order and the cursor of the next page (None on the last). Modes in
    `partial_modes` were not searched completely (a store's bound, or its server unreachable)."""

    hits: list[SearchHit]
    next_cursor: SearchCursor | None
    partial_modes: tuple[Mode, ...] = ()


def encode_search_cursor(cursor: SearchCursor | None) -> str | None:
    if cursor is None:
        return None
    return f"{cursor.score}.{cursor.seq}.{cursor.conversation_id}"


def decode_search_cursor(token: str) -> SearchCursor:
    score, seq, conversation_id = cursor_parts(token, SEARCH_CURSOR_RE)
    return SearchCursor(int(score), conversation_id, int(seq))


class SearchService:
    def __init__(self, stores: StoreRouter) -> None:
        self.stores = stores

    async def search(
        self,
        p: Principal,
        text: str,
        *,
        workspace: str | None = None,
        user: str | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> SearchResults:
        """Hits for `text` read as plain words (every other character only separates them; the
        first `MAX_TERMS` distinct words count). A blank `text` is refused; a text without a letter
        or digit finds nothing."""
        check_text(text, "q", max_chars=MAX_QUERY_CHARS)
        if not text.strip():
            raise InvalidInput("q is blank: say what to search for", code="invalid_query", field="q")
        if workspace is not None:
            check_id(workspace, "workspace")
        if user is not None:
            check_id(user, "user")
        if not 1 <= limit <= MAX_SEARCH_PAGE:
            raise InvalidInput(f"page size must be between 1 and {MAX_SEARCH_PAGE}", code="invalid_query")
        after = decode_search_cursor(cursor) if cursor is not None else None
        terms = search_terms(text)
        if not terms or (user is not None and p.user is not None and user != p.user):
            return SearchResults([], None)
        query = SearchQuery(
            tenant=p.tenant.id,
            terms=terms,
            user=p.user if p.user is not None else user,
            allowed_workspaces=p.workspaces,
            workspace=workspace,
            limit=limit,
            after=after,
        )
        hits: list[SearchHit] = []
        more = False
        partial: list[Mode] = []
        for store, modes in self._placement():
            try:
                page = await store.search(query)
            except StoreUnavailable:
                if store is self.stores.durable:
                    raise
                log.warning("searching without %r: unavailable", store)
                partial += modes
                continue
            hits += page.hits
            more = more or page.next_cursor is not None
            if page.partial:
                partial += modes
        hits.sort(key=lambda h: search_key(h.cursor))
        more = more or len(hits) > limit
        hits = hits[:limit]
        return SearchResults(hits, hits[-1].cursor if more and hits else None, tuple(partial))

    def _placement(self) -> list[tuple[Store, list[Mode]]]:
        """Each distinct store with the modes whose conversations it holds."""
        placed: list[tuple[Store, list[Mode]]] = []
        for mode in Mode:
            store = self.stores.for_mode(mode)
            for held, modes in placed:
                if held is store:
                    modes.append(mode)
                    break
            else:
                placed.append((store, [mode]))
        return placed
