"""Which store holds a conversation: the persistence-mode rule.

| mode        | store                                                    |
|-------------|----------------------------------------------------------|
| `durable`   | the durable store (SQL)                                  |
| `local`     | the durable store, which keeps only the record           |
| `ephemeral` | the ephemeral store (Redis, or memory when none is set)  |
| `none`      | the transient store (this process's memory)              |

A conversation's mode never changes, so once this process has found a conversation in a store it
remembers where, and looks there first next time.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TypeVar

from chatkeep.domain import errors
from chatkeep.errors import Expired, NotFound, StoreUnavailable
from chatkeep.models import ANYONE, ConversationPage, ConversationQuery, Mode, cursor_of, sort_key
from chatkeep.stores.base import Store

T = TypeVar("T")
log = logging.getLogger("chatkeep.routing")
PLACEMENTS = 100_000


class StoreRouter:
    def __init__(self, durable: Store, ephemeral: Store, transient: Store) -> None:
        self.durable = durable
        self.ephemeral = ephemeral
        self.transient = transient
        self._placement: OrderedDict[tuple[str, str], Store] = OrderedDict()

    def named_stores(self) -> dict[str, Store]:
        return {"durable": self.durable, "ephemeral": self.ephemeral, "transient": self.transient}

    @property
    def stores(self) -> list[Store]:
        distinct: list[Store] = []
        for store in self.named_stores().values():
            if all(store is not seen for seen in distinct):
                distinct.append(store)
        return distinct

    def for_mode(self, mode: Mode) -> Store:
        if mode is Mode.EPHEMERAL:
            return self.ephemeral
        if mode is Mode.NONE:
            return self.transient
        return self.durable

    def remember(self, tenant: str, conversation_id: str, store: Store) -> None:
        key = (tenant, conversation_id)
        self._placement[key] = store
        self._placement.move_to_end(key)
        if len(self._placement) > PLACEMENTS:
            self._placement.popitem(last=False)

    def forget(self, tenant: str, conversation_id: str) -> None:
        self._placement.pop((tenant, conversation_id), None)

    async def run(self, tenant: str, conversation_id: str, operation: Callable[[Store], Awaitable[T]]) -> T:
        """Run `operation` on the store that holds the conversation: the one it was last found in
        first, then the others. It raises `NotFound` where the conversation is not (changing nothing),
        so trying it is also the lookup. A live conversation anywhere wins over an expired one."""
        first = self._placement.get((tenant, conversation_id))
        order = self.stores if first is None else [first, *(s for s in self.stores if s is not first)]
        expired: Expired | None = None
        missing: NotFound | None = None
        for store in order:
            try:
                result = await operation(store)
            except Expired as exc:
                expired = expired or exc
                continue
            except NotFound as exc:
                missing = missing or exc
                continue
            self.remember(tenant, conversation_id, store)
            return result
        if expired is not None:
            raise expired
        raise missing or errors.conversation_not_found(conversation_id)

    async def held_elsewhere(self, tenant: str, conversation_id: str, target: Store) -> bool:
        """Whether a live conversation with this id exists in a store other than `target`."""
        for store in self.stores:
            if store is target:
                continue
            try:
                await store.get_conversation(tenant, conversation_id, ANYONE)
                return True
            except NotFound:
                continue
        return False

    async def count(self, tenant: str, user: str | None, *, besides: Store) -> int:
        """Live conversations of the tenant (or user) in every store but `besides`."""
        total = 0
        for store in self.stores:
            if store is not besides:
                total += await store.count_conversations(tenant, user)
        return total

    async def list(self, query: ConversationQuery) -> ConversationPage:
        """One page of the list order across every store. Each store returns its own first page
        after the cursor; the first `limit` of their union is the page. A store other than the durable
        one that cannot answer is left out (and logged) rather than failing the whole list."""
        items = []
        more = False
        for store in self.stores:
            try:
                page = await store.list_conversations(query)
            except StoreUnavailable:
                if store is self.durable:
                    raise
                log.warning("listing without %r: unavailable", store)
                continue
            items += page.items
            more = more or page.next_cursor is not None
        items.sort(key=sort_key, reverse=True)
        more = more or len(items) > query.limit
        items = items[: query.limit]
        return ConversationPage(items, cursor_of(items[-1]) if more and items else None)
