"""FallbackStore: the Store contract over Redis, kept through its outages (see core.py for how)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from chatkeep.errors import StoreUnavailable
from chatkeep.models import (
    ANYONE,
    AppendOutcome,
    Conversation,
    ConversationPage,
    ConversationPatch,
    ConversationQuery,
    ExpiredConversation,
    LimitPolicy,
    Message,
    MessagePage,
    MessageStatus,
    NewMessage,
    Scope,
    SearchPage,
    SearchQuery,
    Usage,
)
from chatkeep.stores.base import Extension, Store
from chatkeep.stores.fallback.core import FallbackCore


class FallbackStore(FallbackCore):
    # -- conversations ----------------------------------------------------------------------------

    async def create_conversation(
        self,
        conversation: Conversation,
        *,
        max_per_tenant: int | None = None,
        max_per_user: int | None = None,
    ) -> Conversation:
        """During an outage a client-chosen id cannot be checked (another user may hold it in Redis),
        so the create is refused with StoreUnavailable."""

        async def refused() -> Conversation:
            raise self._outage.unavailable(
                "a conversation id chosen by the client cannot be checked during the outage; "
                "omit the id to have one generated"
            )

        return await self._write(
            (conversation.tenant, conversation.id),
            ANYONE,
            lambda s: s.create_conversation(
                conversation, max_per_tenant=max_per_tenant, max_per_user=max_per_user
            ),
            self._learn,
            refused,
        )

    async def create_generated(
        self,
        conversation: Conversation,
        *,
        max_per_tenant: int | None = None,
        max_per_user: int | None = None,
    ) -> Conversation:
        """During an outage accepted in memory: the id is unguessable, so nobody else holds it. The
        count limits cannot be checked against Redis then and are not applied on replay."""
        return await self._write(
            (conversation.tenant, conversation.id),
            ANYONE,
            lambda s: s.create_conversation(
                conversation, max_per_tenant=max_per_tenant, max_per_user=max_per_user
            ),
            self._learn,
            lambda: self._outage.create(conversation),
        )

    async def get_conversation(
        self, tenant: str, conversation_id: str, scope: Scope = ANYONE
    ) -> Conversation:
        key = (tenant, conversation_id)

        async def on_primary(store: Store) -> Conversation:
            epoch = self._known.epoch(key)
            found = await store.get_conversation(tenant, conversation_id, scope)
            if not self._locks.held(key):
                self._known.learn_read(found, epoch)
            return found

        return await self._read_one(key, on_primary, lambda: self._outage.get(tenant, conversation_id, scope))

    async def list_conversations(self, query: ConversationQuery) -> ConversationPage:
        """During an outage: the conversations written in it only."""
        return await self._read(
            lambda s: s.list_conversations(query), lambda: self._memory.list_conversations(query)
        )

    async def count_conversations(self, tenant: str, user: str | None = None) -> int:
        return await self._read(
            lambda s: s.count_conversations(tenant, user),
            lambda: self._memory.count_conversations(tenant, user),
        )

    async def update_conversation(
        self,
        tenant: str,
        conversation_id: str,
        patch: ConversationPatch,
        *,
        expected_version: int | None = None,
        scope: Scope = ANYONE,
    ) -> Conversation:
        return await self._write(
            (tenant, conversation_id),
            scope,
            lambda s: s.update_conversation(
                tenant, conversation_id, patch, expected_version=expected_version, scope=scope
            ),
            self._learn,
            lambda: self._outage.update(tenant, conversation_id, patch, expected_version, scope),
        )

    async def touch_conversation(
        self, tenant: str, conversation_id: str, scope: Scope = ANYONE
    ) -> Conversation:
        return await self._write(
            (tenant, conversation_id),
            scope,
            lambda s: s.touch_conversation(tenant, conversation_id, scope),
            self._learn,
            lambda: self._outage.touch(tenant, conversation_id, scope),
        )

    async def delete_conversation(
        self, tenant: str, conversation_id: str, scope: Scope = ANYONE
    ) -> Conversation:
        key = (tenant, conversation_id)
        return await self._write(
            key,
            scope,
            lambda s: s.delete_conversation(tenant, conversation_id, scope),
            lambda _: self._known.forget(key),
            lambda: self._outage.delete(tenant, conversation_id, scope),
        )

    async def sweep_expired(self, *, limit: int = 500, keep_ms: int = 0) -> list[ExpiredConversation]:
        if self.degraded:
            return []  # the primary's keys expire by themselves; sweep once it is back
        try:
            return await self.primary.sweep_expired(limit=limit, keep_ms=keep_ms)
        except StoreUnavailable:
            self._degrade()
            return []

    # -- messages ---------------------------------------------------------------------------------

    async def append_messages(
        self,
        tenant: str,
        conversation_id: str,
        messages: Sequence[NewMessage],
        *,
        max_messages: int | None = None,
        policy: LimitPolicy = LimitPolicy.REJECT,
        scope: Scope = ANYONE,
    ) -> AppendOutcome:
        def learn(outcome: AppendOutcome) -> None:
            self._known.learn(outcome.conversation, (r.message for r in outcome.results))

        return await self._write(
            (tenant, conversation_id),
            scope,
            lambda s: s.append_messages(
                tenant, conversation_id, messages, max_messages=max_messages, policy=policy, scope=scope
            ),
            learn,
            lambda: self._outage.append(tenant, conversation_id, messages, max_messages, policy, scope),
        )

    async def extend_message(
        self,
        tenant: str,
        conversation_id: str,
        message_id: str,
        text: str,
        *,
        offset: int | None = None,
        max_bytes: int | None = None,
        scope: Scope = ANYONE,
    ) -> Extension:
        return await self._write(
            (tenant, conversation_id),
            scope,
            lambda s: s.extend_message(
                tenant, conversation_id, message_id, text, offset=offset, max_bytes=max_bytes, scope=scope
            ),
            lambda extension: self._learn(extension.conversation),
            lambda: self._outage.extend(tenant, conversation_id, message_id, text, offset, max_bytes, scope),
        )

    async def finish_message(
        self,
        tenant: str,
        conversation_id: str,
        message_id: str,
        status: MessageStatus,
        *,
        usage: Usage | None = None,
        scope: Scope = ANYONE,
    ) -> Message:
        # Finishing changes neither seq nor version: what is known of the conversation still holds.
        return await self._write(
            (tenant, conversation_id),
            scope,
            lambda s: s.finish_message(tenant, conversation_id, message_id, status, usage=usage, scope=scope),
            lambda _: None,
            lambda: self._outage.finish(tenant, conversation_id, message_id, status, usage, scope),
        )

    async def interrupt_stale_streams(
        self, *, idle_ms: int, limit: int = 500
    ) -> list[tuple[Conversation, Message]]:
        if self.degraded:
            return await self._outage.interrupt_stale_streams(idle_ms, limit)
        try:
            stale = await self.primary.interrupt_stale_streams(idle_ms=idle_ms, limit=limit)
        except StoreUnavailable:
            self._degrade()
            return []
        return stale

    async def read_messages(
        self,
        conversation: Conversation,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int = 50,
    ) -> MessagePage:
        return await self._read_one(
            (conversation.tenant, conversation.id),
            lambda s: s.read_messages(conversation, before=before, after=after, limit=limit),
            lambda: self._outage.read(conversation, before, after, limit),
        )

    async def search(self, query: SearchQuery) -> SearchPage:
        """During an outage: the conversations written in it only, and the page says `partial`."""

        async def outage() -> SearchPage:
            return replace(await self._memory.search(query), partial=True)

        return await self._read(lambda s: s.search(query), outage)

    # -- import -----------------------------------------------------------------------------------

    async def import_conversation(self, conversation: Conversation, messages: Sequence[Message]) -> bool:
        """During an outage refused with StoreUnavailable: the id cannot be checked against Redis."""

        async def refused() -> bool:
            raise self._outage.unavailable("an import cannot be checked during the outage; try again later")

        def learn(stored: bool) -> None:
            if stored:
                self._known.learn(conversation, messages)

        return await self._write(
            (conversation.tenant, conversation.id),
            ANYONE,
            lambda s: s.import_conversation(conversation, messages),
            learn,
            refused,
        )
