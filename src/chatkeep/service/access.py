"""What the conversation and message services share: the contracts and settings they work over, the
read every operation on a conversation starts from (a caller sees only what it may), and page sizes."""

from __future__ import annotations

from chatkeep.errors import InvalidInput
from chatkeep.events.base import EventBus
from chatkeep.models import Conversation
from chatkeep.service.auth import Principal
from chatkeep.service.lifecycle import Lifetimes
from chatkeep.service.limits import Limits
from chatkeep.service.routing import StoreRouter
from chatkeep.service.validation import check_id

DEFAULT_PAGE = 50


class ConversationAccess:
    """Conversations as a caller (Principal) may see them.

    Callers only ever reach conversations of their tenant, and with a user token only their own in
    the workspaces their token allows; everything else answers `NotFound`, exactly as an id that
    does not exist. Each conversation lives in the store of its persistence mode (see routing).
    """

    def __init__(self, stores: StoreRouter, events: EventBus, limits: Limits, lifetimes: Lifetimes) -> None:
        self.stores = stores
        self.events = events
        self.limits = limits
        self.lifetimes = lifetimes

    async def get_conversation(self, p: Principal, conversation_id: str) -> Conversation:
        """The conversation, if the caller may see it; `NotFound` (or `Expired`, to its owner) otherwise."""
        check_id(conversation_id, "conversation id")
        return await self.stores.run(
            p.tenant.id, conversation_id, lambda s: s.get_conversation(p.tenant.id, conversation_id, p.scope)
        )

    def _page_size(self, limit: int, *, allow_zero: bool = False) -> int:
        low = 0 if allow_zero else 1
        if not low <= limit <= self.limits.max_page_size:
            raise InvalidInput(
                f"page size must be between {low} and {self.limits.max_page_size}", code="invalid_query"
            )
        return limit
