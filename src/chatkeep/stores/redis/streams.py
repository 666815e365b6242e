"""Streaming replies in Redis: deltas and finishing, each a conditional commit of what the domain
planned; interrupting the replies whose writer went quiet; and reading a page of messages."""

from __future__ import annotations

from dataclasses import replace
from typing import cast

from chatkeep.domain import (
    after_extend,
    after_finish,
    errors,
    finished,
    is_expired,
    page_bounds,
    plan_extend,
)
from chatkeep.errors import NotFound
from chatkeep.models import (
    Conversation,
    Message,
    MessagePage,
    MessageStatus,
)
from chatkeep.stores.base import Extension
from chatkeep.stores.redis import codec
from chatkeep.stores.redis.codec import SEP
from chatkeep.stores.redis.commit import ROUNDS, RedisCommits, Snapshot, WriteSet
from chatkeep.stores.requests import Extend, Finish, Read, Ref


class RedisStreams(RedisCommits):
    """Streaming replies and page reads of the Redis store."""

    # -- streaming replies ------------------------------------------------------------------------

    async def _message(self, ref: Ref, message_id: str) -> tuple[Snapshot, Conversation, Message]:
        snapshot = await self._read(*ref.key, [message_id])
        conversation = await self._live(*ref.key, snapshot, ref.scope)
        message = snapshot.messages.get(message_id)
        if message is None or message.status is MessageStatus.TRIMMED:  # no longer retained
            raise errors.message_not_found(message_id)
        return snapshot, conversation, message

    async def _replace(
        self, snapshot: Snapshot, conversation: Conversation, before: Message, after: Message, now: int
    ) -> Conversation | None:
        """Store `after` in place of `before`, with the conversation as the domain says it is then,
        and note it as streaming since `now` or as no longer streaming; None when the conversation
        changed since `snapshot` (plan again)."""
        writes = WriteSet()
        if after.status is MessageStatus.STREAMING:
            changed = after_extend(conversation, after, now)
            writes.streaming[after.id] = now
        else:
            changed = after_finish(conversation, before, after, now)
            writes.streaming[after.id] = None
        writes.messages[after.seq] = codec.encode(after, now)
        if not await self._commit(snapshot, changed, writes, listed=True):
            return None
        return changed

    async def extend(self, request: Extend) -> Extension:
        r = request
        (tenant, conversation_id), message_id = r.ref.key, r.message_id
        async with self._turn(tenant, conversation_id):
            for attempt in range(ROUNDS):
                await self._pause(attempt)
                snapshot, conversation, message = await self._message(r.ref, message_id)
                at, suffix = plan_extend(message, r.text, r.offset, r.max_bytes)
                if not suffix:
                    return Extension(conversation, message, at, "")
                now = self._clock()
                grown = replace(message, content=message.content + suffix)
                changed = await self._replace(snapshot, conversation, message, grown, now)
                if changed is not None:
                    return Extension(changed, grown, at, suffix)
            raise self._lost(conversation_id)

    async def finish(self, request: Finish) -> Message:
        (tenant, conversation_id), message_id = request.ref.key, request.message_id
        async with self._turn(tenant, conversation_id):
            for attempt in range(ROUNDS):
                await self._pause(attempt)
                snapshot, conversation, before = await self._message(request.ref, message_id)
                after = finished(before, request.status, request.usage)
                if after is None:
                    return before
                if await self._replace(snapshot, conversation, before, after, self._clock()) is not None:
                    return after
            raise self._lost(conversation_id)

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
                snapshot, conversation, message = await self._message(Ref(tenant, cid), message_id)
            except NotFound:  # deleted or expired: nothing to interrupt
                await self._note_stream(tenant, cid, message_id, None)
                continue
            if message.status is not MessageStatus.STREAMING:
                await self._note_stream(tenant, cid, message_id, None)
                continue
            updated = snapshot.updated[message_id]
            if updated > cutoff:  # extended since the index was read
                await self._note_stream(tenant, cid, message_id, updated)
                continue
            interrupted = replace(message, status=MessageStatus.INTERRUPTED)
            changed = await self._replace(snapshot, conversation, message, interrupted, self._clock())
            if changed is not None:  # nothing changed the conversation since it was read
                done.append((changed, interrupted))
        return done

    async def read(self, request: Read) -> MessagePage:
        conversation = request.conversation
        if is_expired(conversation, self._clock()):
            return MessagePage([], has_more=False)
        seqs, more = page_bounds(conversation, request.before, request.after, request.limit)
        rows = await self._messages(conversation.tenant, conversation.id, seqs)
        # A message trimmed since `conversation` was read is no longer retained.
        messages = [m for m in rows if m.status is not MessageStatus.TRIMMED]
        return MessagePage(messages, has_more=more and bool(messages))
