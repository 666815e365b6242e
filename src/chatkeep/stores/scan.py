"""Search by reading: the caller's conversations through `list_conversations` (most recent activity
first) and their messages through `read_messages` (newest first), each checked with
`chatkeep.domain.search`. The search of the stores that keep no full-text index (memory, Redis),
optionally bounded: past `max_conversations` conversations or `max_messages` messages read, the
scan stops and its page says `partial`."""

from __future__ import annotations

from dataclasses import replace

from chatkeep.domain.search import Candidate, holds, search_page
from chatkeep.models import (
    Conversation,
    ConversationQuery,
    Message,
    MessageStatus,
    Mode,
    SearchPage,
    SearchQuery,
)
from chatkeep.stores.base import Store

LIST_PAGE = 200
MESSAGE_PAGE = 200


async def scan_search(
    store: Store,
    query: SearchQuery,
    *,
    max_conversations: int | None = None,
    max_messages: int | None = None,
) -> SearchPage:
    listing = ConversationQuery(
        tenant=query.tenant,
        user=query.user,
        allowed_workspaces=query.allowed_workspaces,
        workspace=query.workspace,
        limit=LIST_PAGE,
    )
    hits: list[Candidate] = []
    conversations = messages = 0
    while True:
        page = await store.list_conversations(listing)
        for conversation in page.items:
            if max_conversations is not None and conversations >= max_conversations:
                return search_page(query, hits, partial=True)
            conversations += 1
            if holds(conversation.title, query.terms):
                hits.append(_candidate(conversation, None))
            budget = None if max_messages is None else max_messages - messages
            read, complete = await _scan_messages(store, conversation, query, budget, hits)
            messages += read
            if not complete:
                return search_page(query, hits, partial=True)
        if page.next_cursor is None:
            return search_page(query, hits)
        listing = replace(listing, after=page.next_cursor)


async def _scan_messages(
    store: Store, conversation: Conversation, query: SearchQuery, budget: int | None, hits: list[Candidate]
) -> tuple[int, bool]:
    """Read the conversation's messages newest first, at most `budget`; return how many were read
    and whether that was all of them."""
    if conversation.mode is Mode.LOCAL or conversation.message_count == 0:
        return 0, True
    read = 0
    before: int | None = None
    while True:
        size = MESSAGE_PAGE if budget is None else min(MESSAGE_PAGE, budget - read)
        if size <= 0:
            return read, False
        page = await store.read_messages(conversation, before=before, limit=size)
        read += len(page.messages)
        for m in page.messages:
            if m.status is not MessageStatus.TRIMMED and holds(m.content, query.terms):
                hits.append(_candidate(conversation, m))
        if not page.has_more or not page.messages:
            return read, True
        before = page.messages[0].seq


def _candidate(c: Conversation, message: Message | None) -> Candidate:
    if message is None:
        return Candidate(c.title, c.id, c.workspace, c.title)
    return Candidate(message.content, c.id, c.workspace, c.title, message.id, message.seq, message.role)
