"""Streaming replies in Redis: deltas swapped in under a compare-and-set, finishing, interrupting
the replies whose writer went quiet; and reading a page of messages."""

from __future__ import annotations

from dataclasses import replace
from typing import cast

from chatkeep.domain import (
    PREVIEW_CHARS,
    errors,
    finished,
    plan_extend,
)
from chatkeep.errors import (
    NotFound,
    StoreUnavailable,
)
from chatkeep.models import (
    ANYONE,
    Conversation,
    Message,
    MessagePage,
    MessageStatus,
    Scope,
    Usage,
)
from chatkeep.stores.base import Extension
from chatkeep.stores.redis import codec
from chatkeep.stores.redis.codec import SEP
from chatkeep.stores.redis.core import RedisCore

SWAP_ATTEMPTS = 20


class RedisStreams(RedisCore):
    """Streaming replies and page reads of the Redis store."""

    # -- streaming replies ------------------------------------------------------------------------

    @property
    def _streams_key(self) -> str:
        return f"{self.prefix}:streaming"

    async def _note_stream(self, tenant: str, cid: str, message_id: str, updated: int | None) -> None:
        """Record (or with None, forget) when a streaming message was last extended."""
        member = SEP.join((tenant, cid, message_id))
        async with self._guard():
            if updated is None:
                await self._redis.zrem(self._streams_key, member)
            else:
                await self._redis.zadd(self._streams_key, {member: updated})

    async def _get_message(
        self, tenant: str, cid: str, message_id: str, scope: Scope
    ) -> tuple[Conversation, str]:
        keys = self._conv_keys(tenant, cid)
        answer = await self._script(
            "GET_MESSAGE", keys, [self._clock(), *codec.scope_args(scope), message_id]
        )
        if answer[0] == "missing":
            raise await self._gone(tenant, cid, scope)
        if answer[0] == "no_message":
            raise errors.message_not_found(message_id)
        return codec.conversation_of(tenant, cid, codec.pairs_of(answer[3:])), answer[2]

    async def _swap(
        self, tenant: str, cid: str, stored: str, after: Message, before: Message, now: int, scope: Scope
    ) -> Conversation | None:
        """Replace a message read as `stored` with `after`, unless it changed meanwhile (None)."""
        answer = await self._script(
            "SWAP_MESSAGE",
            self._conv_keys(tenant, cid),
            [
                now,
                *codec.scope_args(scope),
                after.seq,
                stored,
                codec.encode(after, now),
                after.usage.input_tokens - before.usage.input_tokens,
                after.usage.output_tokens - before.usage.output_tokens,
                after.content[:PREVIEW_CHARS],
            ],
        )
        if answer[0] == "missing":
            raise await self._gone(tenant, cid, scope)
        if answer[0] == "changed":
            return None
        conversation = codec.conversation_of(tenant, cid, codec.pairs_of(answer[1:]))
        await self._listed(conversation)
        return conversation

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
        for _ in range(SWAP_ATTEMPTS):
            conversation, stored = await self._get_message(tenant, conversation_id, message_id, scope)
            message, _ = codec.decode(conversation_id, stored)
            at, suffix = plan_extend(message, text, offset, max_bytes)
            if not suffix:
                return Extension(conversation, message, at, "")
            now = self._clock()
            grown = replace(message, content=message.content + suffix)
            swapped = await self._swap(tenant, conversation_id, stored, grown, message, now, scope)
            if swapped is not None:
                await self._note_stream(tenant, conversation_id, message_id, now)
                return Extension(swapped, grown, at, suffix)
        raise StoreUnavailable(
            f"message {message_id!r} kept changing; try again", public="the message kept changing; try again"
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
        for _ in range(SWAP_ATTEMPTS):
            _, stored = await self._get_message(tenant, conversation_id, message_id, scope)
            before, _ = codec.decode(conversation_id, stored)
            after = finished(before, status, usage)
            if after is None:
                return before
            if (
                await self._swap(tenant, conversation_id, stored, after, before, self._clock(), scope)
                is not None
            ):
                await self._note_stream(tenant, conversation_id, message_id, None)
                return after
        raise StoreUnavailable(
            f"message {message_id!r} kept changing; try again", public="the message kept changing; try again"
        )

    async def interrupt_stale_streams(
        self, *, idle_ms: int, limit: int = 500
    ) -> list[tuple[Conversation, Message]]:
        cutoff = self._clock() - idle_ms
        async with self._guard():
            members = cast(
                list[str],
                await self._redis.zrangebyscore(self._streams_key, "-inf", cutoff, start=0, num=limit),
            )
        done = []
        for member in members:
            tenant, cid, message_id = member.split(SEP)
            try:
                _, stored = await self._get_message(tenant, cid, message_id, ANYONE)
            except NotFound:  # deleted or expired: nothing to interrupt
                await self._note_stream(tenant, cid, message_id, None)
                continue
            message, updated = codec.decode(cid, stored)
            if message.status is not MessageStatus.STREAMING:
                await self._note_stream(tenant, cid, message_id, None)
                continue
            if updated > cutoff:  # extended since the index was read
                await self._note_stream(tenant, cid, message_id, updated)
                continue
            interrupted = replace(message, status=MessageStatus.INTERRUPTED)
            conversation = await self._swap(tenant, cid, stored, interrupted, message, self._clock(), ANYONE)
            if conversation is not None:  # another sweeper did not get there first
                await self._note_stream(tenant, cid, message_id, None)
                done.append((conversation, interrupted))
        return done

    async def read_messages(
        self,
        conversation: Conversation,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int = 50,
    ) -> MessagePage:
        keys = self._conv_keys(conversation.tenant, conversation.id)[:2]
        answer = await self._script("PAGE", keys, [codec.opt(before), codec.opt(after), limit])
        rows = [row for row in answer[1:] if row]
        return MessagePage(
            [codec.stored_message(conversation.id, row) for row in rows],
            has_more=bool(answer[0]) and bool(rows),
        )
