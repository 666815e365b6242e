"""FallbackStore: the Store contract over Redis, kept through its outages (see core.py for how)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from chatkeep import models
from chatkeep.errors import StoreUnavailable
from chatkeep.stores.base import Extension, Store
from chatkeep.stores.fallback.core import FallbackCore
from chatkeep.stores.requests import Append, Create, Extend, Finish, Read, Ref, Update


class FallbackStore(FallbackCore):
    # -- conversations ----------------------------------------------------------------------------

    async def create(self, request: Create) -> models.Conversation:
        """During an outage a conversation is created in memory only under an id the server
        generated (unguessable: nobody else holds it); the count limits cannot be checked against
        Redis then and are not applied on replay. A client-chosen id cannot be checked (another user
        may hold it in Redis), so its create is refused with StoreUnavailable."""
        c = request.conversation

        async def outage() -> models.Conversation:
            if request.generated:
                return await self._outage.create(c)
            raise self._outage.unavailable(
                "a conversation id chosen by the client cannot be checked during the outage; "
                "omit the id to have one generated"
            )

        return await self._write(Ref(c.tenant, c.id), lambda s: s.create(request), self._learn, outage)

    async def get(self, ref: Ref) -> models.Conversation:
        async def on_primary(store: Store) -> models.Conversation:
            epoch = self._known.epoch(ref.key)
            found = await store.get(ref)
            if not self._locks.held(ref.key):
                self._known.learn_read(found, epoch)
            return found

        return await self._read_one(ref.key, on_primary, lambda: self._outage.get(ref))

    async def list_conversations(self, query: models.ConversationQuery) -> models.ConversationPage:
        """During an outage: the conversations written in it only."""
        return await self._read(
            lambda s: s.list_conversations(query), lambda: self._memory.list_conversations(query)
        )

    async def count_conversations(self, tenant: str, user: str | None = None) -> int:
        return await self._read(
            lambda s: s.count_conversations(tenant, user),
            lambda: self._memory.count_conversations(tenant, user),
        )

    async def update(self, request: Update) -> models.Conversation:
        return await self._write(
            request.ref, lambda s: s.update(request), self._learn, lambda: self._outage.update(request)
        )

    async def touch(self, ref: Ref) -> models.Conversation:
        return await self._write(ref, lambda s: s.touch(ref), self._learn, lambda: self._outage.touch(ref))

    async def delete(self, ref: Ref) -> models.Conversation:
        return await self._write(
            ref,
            lambda s: s.delete(ref),
            lambda _: self._known.forget(ref.key),
            lambda: self._outage.delete(ref),
        )

    async def sweep_expired(self, *, limit: int = 500, keep_ms: int = 0) -> list[models.ExpiredConversation]:
        if self.degraded:
            return []  # the primary's keys expire by themselves; sweep once it is back
        try:
            return await self.primary.sweep_expired(limit=limit, keep_ms=keep_ms)
        except StoreUnavailable:
            self._degrade()
            return []

    # -- messages ---------------------------------------------------------------------------------

    async def append(self, request: Append) -> models.AppendOutcome:
        def learn(outcome: models.AppendOutcome) -> None:
            self._known.learn(outcome.conversation, (r.message for r in outcome.results))

        return await self._write(
            request.ref, lambda s: s.append(request), learn, lambda: self._outage.append(request)
        )

    async def extend(self, request: Extend) -> Extension:
        return await self._write(
            request.ref,
            lambda s: s.extend(request),
            lambda extension: self._learn(extension.conversation),
            lambda: self._outage.extend(request),
        )

    async def finish(self, request: Finish) -> models.Message:
        # Finishing changes neither seq nor version: what is known of the conversation still holds.
        return await self._write(
            request.ref, lambda s: s.finish(request), lambda _: None, lambda: self._outage.finish(request)
        )

    async def interrupt_stale_streams(
        self, *, idle_ms: int, limit: int = 500
    ) -> list[tuple[models.Conversation, models.Message]]:
        if self.degraded:
            return await self._outage.interrupt_stale_streams(idle_ms, limit)
        try:
            stale = await self.primary.interrupt_stale_streams(idle_ms=idle_ms, limit=limit)
        except StoreUnavailable:
            self._degrade()
            return []
        return stale

    async def read(self, request: Read) -> models.MessagePage:
        c = request.conversation
        return await self._read_one(
            (c.tenant, c.id), lambda s: s.read(request), lambda: self._outage.read(request)
        )

    async def search(self, query: models.SearchQuery) -> models.SearchPage:
        """During an outage: the conversations written in it only, and the page says `partial`."""

        async def outage() -> models.SearchPage:
            return replace(await self._memory.search(query), partial=True)

        return await self._read(lambda s: s.search(query), outage)

    # -- import -----------------------------------------------------------------------------------

    async def import_conversation(
        self, conversation: models.Conversation, messages: Sequence[models.Message]
    ) -> bool:
        """During an outage refused with StoreUnavailable: the id cannot be checked against Redis."""

        async def refused() -> bool:
            raise self._outage.unavailable("an import cannot be checked during the outage; try again later")

        def learn(stored: bool) -> None:
            if stored:
                self._known.learn(conversation, messages)

        return await self._write(
            Ref(conversation.tenant, conversation.id),
            lambda s: s.import_conversation(conversation, messages),
            learn,
            refused,
        )
