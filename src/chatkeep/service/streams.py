"""Streaming replies: an assistant message opened as `streaming`, grown by text deltas, then finished
as `complete` or `interrupted`.

Deltas are stored as they arrive, but not one write per token: while a write for a message is in
flight, the deltas that arrive meanwhile queue up and go in the next write together. Every delta is
published (as `message.delta`, with its offset in the content) only after it is stored, so a reader
that loads the message and then follows the deltas by offset never sees a gap, and a repeated delta
is recognised by its offset.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from chatkeep.errors import ChatkeepError, InvalidInput
from chatkeep.models import Message, MessageStatus, Usage
from chatkeep.service.access import ConversationAccess
from chatkeep.service.auth import Principal
from chatkeep.service.events import delta_event, updated_event
from chatkeep.service.validation import check_id, check_text
from chatkeep.stores.base import Extension, Store


@dataclass
class _Delta:
    text: str
    offset: int | None
    done: asyncio.Future[Extension] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class StreamService:
    def __init__(self, chat: ConversationAccess) -> None:
        self.chat = chat
        # Deltas waiting for the write in flight, per (caller, tenant, conversation, message); a key
        # is present while a writer drains it, and its event is set when it is done.
        self._waiting: dict[tuple[str, str, str, str], list[_Delta]] = {}
        self._drained: dict[tuple[str, str, str, str], asyncio.Event] = {}
        self._writers: set[asyncio.Task[None]] = set()  # the loop keeps only weak references

    async def delta(
        self, p: Principal, conversation_id: str, message_id: str, text: str, *, offset: int | None = None
    ) -> Extension:
        """Add text to a streaming message; returns once it is stored. With `offset` (the content
        length the writer has sent so far) a retried delta is not added twice."""
        return await self.submit(p, conversation_id, message_id, text, offset=offset)

    def submit(
        self, p: Principal, conversation_id: str, message_id: str, text: str, *, offset: int | None = None
    ) -> asyncio.Future[Extension]:
        """`delta` without waiting: the delta is queued behind those submitted before it (stored in
        that order) and the future is done once it is stored. Raises InvalidInput for a malformed
        delta, queueing nothing."""
        check_id(conversation_id, "conversation id")
        check_id(message_id, "message id")
        check_text(text, "text")
        if offset is not None and offset < 0:
            raise InvalidInput("'offset' must be >= 0", code="invalid_query")
        key = (p.rate_key, p.tenant.id, conversation_id, message_id)
        delta = _Delta(text, offset)
        waiting = self._waiting.get(key)
        if waiting is None:  # no write in flight: this caller writes, and takes whatever queues meanwhile
            self._waiting[key] = [delta]
            self._drained[key] = asyncio.Event()
            writer = asyncio.get_running_loop().create_task(self._drain(p, key))
            self._writers.add(writer)
            writer.add_done_callback(self._writers.discard)
        else:
            waiting.append(delta)
        return delta.done

    async def _drain(self, p: Principal, key: tuple[str, str, str, str]) -> None:
        _, tenant, conversation_id, message_id = key
        try:
            while batch := self._waiting[key]:
                self._waiting[key] = []
                for group in _contiguous(batch):
                    text = "".join(d.text for d in group)
                    offset = group[0].offset

                    async def extend(
                        store: Store, text: str = text, offset: int | None = offset
                    ) -> Extension:
                        return await store.extend_message(
                            tenant,
                            conversation_id,
                            message_id,
                            text,
                            offset=offset,
                            max_bytes=self.chat.limits.max_message_bytes,
                            scope=p.scope,
                        )

                    try:
                        extension = await self.chat.stores.run(tenant, conversation_id, extend)
                    except ChatkeepError as exc:
                        for d in group:
                            if not d.done.done():  # not cancelled by a caller that left
                                d.done.set_exception(exc)
                        continue
                    if extension.appended:
                        await self.chat.events.publish(delta_event(extension))
                    for d in group:
                        if not d.done.done():
                            d.done.set_result(extension)
        finally:
            for leftover in self._waiting.pop(key, []):
                if not leftover.done.done():
                    leftover.done.set_exception(
                        ChatkeepError("the stream writer stopped", code="stream_aborted")
                    )
            self._drained.pop(key).set()

    async def finish(
        self,
        p: Principal,
        conversation_id: str,
        message_id: str,
        status: MessageStatus,
        usage: Usage | None = None,
    ) -> Message:
        """End a streaming message as `complete` or `interrupted` (idempotent for the same status)."""
        check_id(conversation_id, "conversation id")
        check_id(message_id, "message id")
        if status not in (MessageStatus.COMPLETE, MessageStatus.INTERRUPTED):
            raise InvalidInput("a stream finishes as 'complete' or 'interrupted'", code="invalid_status")
        drained = self._drained.get((p.rate_key, p.tenant.id, conversation_id, message_id))
        if drained is not None:  # deltas sent before the finish are stored before it
            await drained.wait()
        message = await self.chat.stores.run(
            p.tenant.id,
            conversation_id,
            lambda s: s.finish_message(
                p.tenant.id, conversation_id, message_id, status, usage=usage, scope=p.scope
            ),
        )
        conversation = await self.chat.get_conversation(p, conversation_id)
        await self.chat.events.publish(updated_event(conversation, message))
        return message


def _contiguous(batch: Sequence[_Delta]) -> list[list[_Delta]]:
    """Split queued deltas into runs that can be written as one: each continues the previous one
    (it has no offset, or the offset where the previous one ends)."""
    groups: list[list[_Delta]] = []
    end: int | None = None  # where the run so far ends, when known
    for delta in batch:
        if groups and (delta.offset is None or delta.offset == end):
            groups[-1].append(delta)
        else:
            groups.append([delta])
        if delta.offset is not None:
            end = delta.offset + len(delta.text)
        elif end is not None:
            end += len(delta.text)
    return groups
