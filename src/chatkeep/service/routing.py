"""Which store holds a conversation: the persistence-mode rule."""

from __future__ import annotations

from chatkeep.models import Mode
from chatkeep.stores.base import Store


class StoreRouter:
    """Maps persistence modes to stores and finds the store holding a conversation id.

    Every mode is kept in the durable store for now; the mode is recorded on each conversation so
    that later routing rules apply to it without a migration.
    """

    def __init__(self, durable: Store) -> None:
        self.durable = durable

    @property
    def stores(self) -> list[Store]:
        return [self.durable]

    def named_stores(self) -> dict[str, Store]:
        return {"durable": self.durable}

    def for_mode(self, mode: Mode) -> Store:
        return self.durable

    def holder(self, tenant: str, conversation_id: str) -> Store:
        """The store that holds (or would hold) this conversation."""
        return self.durable
