"""What a tenant holds, per persistence mode: for `chatkeep stats`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from chatkeep.models import Conversation, ConversationQuery, Mode
from chatkeep.service.routing import StoreRouter

PAGE = 500


@dataclass
class ModeCount:
    conversations: int = 0
    messages: int = 0


async def tenant_counts(router: StoreRouter, tenant: str) -> dict[Mode, ModeCount]:
    """Live conversations and their retained messages per mode, read a page at a time. Conversations
    in the `none` mode live in each server process's memory and are seen only by that process."""
    counts = {mode: ModeCount() for mode in Mode}
    async for conversation in _conversations(router, tenant):
        count = counts[conversation.mode]
        count.conversations += 1
        count.messages += conversation.message_count
    return counts


async def _conversations(router: StoreRouter, tenant: str) -> AsyncIterator[Conversation]:
    query = ConversationQuery(tenant=tenant, limit=PAGE)
    while True:
        page = await router.list(query)
        for conversation in page.items:
            yield conversation
        if page.next_cursor is None:
            return
        query = ConversationQuery(tenant=tenant, limit=PAGE, after=page.next_cursor)
