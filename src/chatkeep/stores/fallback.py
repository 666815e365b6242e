"""FallbackStore: a store whose acknowledged writes survive an outage of its server.

While the primary store (Redis) cannot be reached, writes go to an in-process memory store and
each is journaled; a probe checks the primary every second, and once it answers the journal is
replayed into it in order and the memory emptied. Replays are safe to repeat: appends carry their
message ids (stored once), creates and deletes of what already happened are skipped. A write that
needs a conversation this process has never seen (so cannot continue its seqs) is refused with
StoreUnavailable rather than guessed. Reads of messages stored before the outage answer
StoreUnavailable until the primary is back.

With `refuse=True` an outage answers StoreUnavailable to every call instead (nothing is kept).
What the fallback holds lives in this process: it survives a Redis outage, not a crash of the
process during one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from chatkeep.errors import Conflict, NotFound, StoreUnavailable
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
    Tenant,
    Usage,
)
from chatkeep.stores.base import Extension, Store
from chatkeep.stores.memory import MemoryStore

T = TypeVar("T")
Replay = Callable[[Store], Awaitable[Any]]
log = logging.getLogger("chatkeep.fallback")
REMEMBERED = 10_000


class FallbackStore(Store):
    def __init__(self, primary: Store, *, refuse: bool = False, probe_interval: float = 1.0) -> None:
        self.primary = primary
        self.url = primary.url
        self.refuse = refuse
        self._probe_interval = probe_interval
        self._fallback = MemoryStore()
        self._journal: list[Replay] = []
        self._created_here: set[tuple[str, str]] = set()
        self._known: OrderedDict[tuple[str, str], Conversation] = OrderedDict()
        self._lock = asyncio.Lock()
        self._probe: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"FallbackStore({self.primary!r})"

    @property
    def pending(self) -> int:
        """Writes held in memory, waiting for the primary."""
        return len(self._journal)

    # -- lifecycle --------------------------------------------------------------------------------

    async def connect(self) -> None:
        try:
            await self.primary.connect()
        except StoreUnavailable as exc:
            log.warning("%r is down at start: %s", self.primary, exc.detail)
            self._degrade()

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
            self._probe = None
        if self._journal:
            with contextlib.suppress(StoreUnavailable):
                await self._replay()
        if self._journal:
            log.error(
                "closing with %d writes for %r never replayed: they are lost",
                len(self._journal),
                self.primary,
            )
        await self.primary.close()

    async def migrate(self) -> None:
        with contextlib.suppress(StoreUnavailable):
            await self.primary.migrate()

    async def ping(self) -> None:
        """Answers while degraded too: an outage of the primary is handled (kept or refused), and
        this instance still serves everything else."""
        if self.degraded:
            return
        try:
            await self.primary.ping()
        except StoreUnavailable:
            self._degrade()

    def _degrade(self) -> None:
        if not self.degraded:
            log.warning(
                "%r unreachable: %s",
                self.primary,
                "refusing writes" if self.refuse else "writes go to memory",
            )
        self.degraded = True
        if self._probe is None or self._probe.done():
            self._probe = asyncio.create_task(self._recover(), name="chatkeep-fallback-probe")

    async def _recover(self) -> None:
        while self.degraded:
            await asyncio.sleep(self._probe_interval)
            try:
                await self.primary.ping()
                async with self._lock:
                    await self._replay()
                    self._fallback = MemoryStore()
                    self._created_here.clear()
                    self.degraded = False
                log.warning("%r is back", self.primary)
            except StoreUnavailable:
                continue
            except Exception:
                log.exception("replay into %r failed; retrying", self.primary)

    async def _replay(self) -> None:
        while self._journal:
            try:
                await self._journal[0](self.primary)
            except (NotFound, Conflict):
                pass  # already deleted, already created: nothing to bring over
            self._journal.pop(0)

    # -- dispatch ---------------------------------------------------------------------------------

    def _learn(self, conversation: Conversation) -> None:
        key = (conversation.tenant, conversation.id)
        self._known[key] = conversation
        self._known.move_to_end(key)
        if len(self._known) > REMEMBERED:
            self._known.popitem(last=False)

    async def _call(
        self,
        on_primary: Callable[[Store], Awaitable[T]],
        on_fallback: Callable[[Store], Awaitable[T]],
        replay: Replay | None = None,
        conversation: tuple[str, str] | None = None,
    ) -> T:
        if not self.degraded:
            try:
                return await on_primary(self.primary)
            except StoreUnavailable:
                self._degrade()
                if self.refuse:
                    raise
        async with self._lock:
            if not self.degraded:
                return await on_primary(self.primary)
            if self.refuse:
                raise StoreUnavailable(f"{self.url.redacted} is unavailable")
            if conversation is not None:
                await self._bootstrap(*conversation)
            result = await on_fallback(self._fallback)
            if replay is not None:
                self._journal.append(replay)
            return result

    async def _bootstrap(self, tenant: str, conversation_id: str) -> None:
        """Give the fallback the last state seen of a conversation, so its seqs continue."""
        try:
            await self._fallback.get_conversation(tenant, conversation_id)
            return
        except NotFound:
            pass
        known = self._known.get((tenant, conversation_id))
        if known is None:
            raise StoreUnavailable(
                f"{self.url.redacted} is unavailable and conversation {conversation_id!r} is unknown here"
            )
        self._fallback.restore(known)

    def _unavailable(self) -> StoreUnavailable:
        return StoreUnavailable(f"{self.url.redacted} is unavailable")

    # -- tenants (the primary's alone) ------------------------------------------------------------

    async def create_tenant(self, tenant: Tenant) -> None:
        await self.primary.create_tenant(tenant)

    async def get_tenant(self, tenant_id: str) -> Tenant | None:
        return await self.primary.get_tenant(tenant_id)

    async def get_tenant_by_key_hash(self, key_hash: str) -> Tenant | None:
        return await self.primary.get_tenant_by_key_hash(key_hash)

    async def list_tenants(self) -> list[Tenant]:
        return await self.primary.list_tenants()

    async def update_tenant(self, tenant: Tenant) -> None:
        await self.primary.update_tenant(tenant)

    # -- conversations ----------------------------------------------------------------------------

    async def create_conversation(
        self,
        conversation: Conversation,
        *,
        max_per_tenant: int | None = None,
        max_per_user: int | None = None,
    ) -> Conversation:
        async def on_primary(store: Store) -> Conversation:
            created = await store.create_conversation(
                conversation, max_per_tenant=max_per_tenant, max_per_user=max_per_user
            )
            self._learn(created)
            return created

        async def on_fallback(store: Store) -> Conversation:
            created = await store.create_conversation(
                conversation, max_per_tenant=max_per_tenant, max_per_user=max_per_user
            )
            self._created_here.add((conversation.tenant, conversation.id))
            return created

        return await self._call(
            on_primary, on_fallback, lambda store: store.create_conversation(conversation)
        )

    async def get_conversation(
        self, tenant: str, conversation_id: str, scope: Scope = ANYONE
    ) -> Conversation:
        async def on_primary(store: Store) -> Conversation:
            found = await store.get_conversation(tenant, conversation_id, scope)
            self._learn(found)
            return found

        async def on_fallback(store: Store) -> Conversation:
            with contextlib.suppress(NotFound):
                return await store.get_conversation(tenant, conversation_id, scope)
            known = self._known.get((tenant, conversation_id))
            if known is None:
                raise self._unavailable()
            if not scope.admits(known.user, known.workspace):
                raise NotFound(f"conversation {conversation_id!r} not found")
            return known

        return await self._call(on_primary, on_fallback)

    async def list_conversations(self, query: ConversationQuery) -> ConversationPage:
        return await self._call(lambda s: s.list_conversations(query), lambda s: s.list_conversations(query))

    async def count_conversations(self, tenant: str, user: str | None = None) -> int:
        return await self._call(
            lambda s: s.count_conversations(tenant, user), lambda s: s.count_conversations(tenant, user)
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
        async def run(store: Store) -> Conversation:
            updated = await store.update_conversation(
                tenant, conversation_id, patch, expected_version=expected_version, scope=scope
            )
            if store is self.primary:
                self._learn(updated)
            return updated

        return await self._call(
            run,
            run,
            lambda store: store.update_conversation(tenant, conversation_id, patch),
            (tenant, conversation_id),
        )

    async def touch_conversation(
        self, tenant: str, conversation_id: str, scope: Scope = ANYONE
    ) -> Conversation:
        async def run(store: Store) -> Conversation:
            touched = await store.touch_conversation(tenant, conversation_id, scope)
            if store is self.primary:
                self._learn(touched)
            return touched

        return await self._call(
            run,
            run,
            lambda store: store.touch_conversation(tenant, conversation_id),
            (tenant, conversation_id),
        )

    async def delete_conversation(
        self, tenant: str, conversation_id: str, scope: Scope = ANYONE
    ) -> Conversation:
        self._known.pop((tenant, conversation_id), None)
        return await self._call(
            lambda s: s.delete_conversation(tenant, conversation_id, scope),
            lambda s: s.delete_conversation(tenant, conversation_id, scope),
            lambda store: store.delete_conversation(tenant, conversation_id),
            (tenant, conversation_id),
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
        async def run(store: Store) -> AppendOutcome:
            outcome = await store.append_messages(
                tenant, conversation_id, messages, max_messages=max_messages, policy=policy, scope=scope
            )
            if store is self.primary:
                self._learn(outcome.conversation)
            return outcome

        return await self._call(
            run,
            run,
            lambda store: store.append_messages(
                tenant, conversation_id, messages, max_messages=max_messages, policy=policy
            ),
            (tenant, conversation_id),
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
        replays: list[Extension] = []

        async def on_primary(store: Store) -> Extension:
            return await store.extend_message(
                tenant, conversation_id, message_id, text, offset=offset, max_bytes=max_bytes, scope=scope
            )

        async def on_fallback(store: Store) -> Extension:
            extension = await self._held_message(
                store.extend_message(
                    tenant, conversation_id, message_id, text, offset=offset, max_bytes=max_bytes, scope=scope
                )
            )
            replays.append(extension)
            return extension

        async def replay(store: Store) -> Any:
            done = replays[0]  # replayed at the offset it was stored at: idempotent
            return await store.extend_message(
                tenant, conversation_id, message_id, done.appended, offset=done.offset
            )

        return await self._call(on_primary, on_fallback, replay, (tenant, conversation_id))

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
        return await self._call(
            lambda s: s.finish_message(tenant, conversation_id, message_id, status, usage=usage, scope=scope),
            lambda s: self._held_message(
                s.finish_message(tenant, conversation_id, message_id, status, usage=usage, scope=scope)
            ),
            lambda store: store.finish_message(tenant, conversation_id, message_id, status, usage=usage),
            (tenant, conversation_id),
        )

    async def _held_message(self, call: Awaitable[T]) -> T:
        """A message stored before the outage is out of reach until the primary is back."""
        try:
            return await call
        except NotFound as exc:
            if exc.code == "message_not_found":
                raise self._unavailable() from None
            raise

    async def interrupt_stale_streams(
        self, *, idle_ms: int, limit: int = 500
    ) -> list[tuple[Conversation, Message]]:
        if self.degraded:
            async with self._lock:
                if self.degraded:
                    stale = await self._fallback.interrupt_stale_streams(idle_ms=idle_ms, limit=limit)
                    self._journal += [_interruption(c.tenant, c.id, m.id) for c, m in stale]
                    return stale
        try:
            return await self.primary.interrupt_stale_streams(idle_ms=idle_ms, limit=limit)
        except StoreUnavailable:
            self._degrade()
            return []

    async def read_messages(
        self,
        conversation: Conversation,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int = 50,
    ) -> MessagePage:
        async def on_fallback(store: Store) -> MessagePage:
            if (conversation.tenant, conversation.id) not in self._created_here:
                raise self._unavailable()
            return await store.read_messages(conversation, before=before, after=after, limit=limit)

        return await self._call(
            lambda s: s.read_messages(conversation, before=before, after=after, limit=limit), on_fallback
        )


def _interruption(tenant: str, conversation_id: str, message_id: str) -> Replay:
    """The replay of a stream the sweeper interrupted during the outage."""

    async def replay(store: Store) -> Message:
        return await store.finish_message(tenant, conversation_id, message_id, MessageStatus.INTERRUPTED)

    return replay
