"""Writes and reads while Redis is unreachable.

A write is accepted only for a conversation this instance knows exactly (see knowledge.py) or one
it created during the outage under an id it generated. It runs on an in-process memory store that
holds the conversation as Redis last had it, so it is checked with the normal rules (scope and
ownership, versions, limits, idempotency by message id) and gets the seq Redis will give it, then
it is journaled with its caller's scope. Whatever cannot be checked is refused with
StoreUnavailable: a conversation never seen here, one whose last write was cut off by the outage,
a create of a client-chosen id (another user may hold it in Redis), a message stored before the
outage, a write past the journal's budget.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from typing import TypeVar

from chatkeep.domain import errors, is_expired
from chatkeep.errors import NotFound, StoreUnavailable
from chatkeep.models import (
    AppendOutcome,
    AppendResult,
    Conversation,
    Message,
    MessagePage,
    MessageStatus,
    NewMessage,
)
from chatkeep.stores import requests
from chatkeep.stores.base import Extension
from chatkeep.stores.fallback.journal import (
    OVERHEAD,
    Append,
    Create,
    Delete,
    Extend,
    Finish,
    Journal,
    Lane,
    Patch,
    Touch,
    message_size,
)
from chatkeep.stores.fallback.knowledge import Key, Knowledge
from chatkeep.stores.memory import MemoryStore

T = TypeVar("T")


class Admission:
    def __init__(self, memory: MemoryStore, known: Knowledge, journal: Journal, where: str, shared: bool):
        self.memory = memory
        self.known = known
        self.journal = journal
        self.where = where
        # Several instances share the store: another may write the same conversation meanwhile, so
        # a seq given during the outage is provisional (see the README's outage contract).
        self.shared = shared

    def unavailable(self, why: str = "") -> StoreUnavailable:
        return StoreUnavailable(f"{self.where} is unavailable" + (f": {why}" if why else ""))

    # -- lanes ------------------------------------------------------------------------------------

    def _lane(self, key: Key) -> Lane:
        lane = self.journal.lane(key)
        if lane is not None:
            return lane
        if self.known.is_uncertain(key):
            raise self.unavailable(
                f"a write to conversation {key[1]!r} was cut off by the outage; its outcome is "
                "known once the store is back"
            )
        known = self.known.get(key)
        if known is None:
            raise self.unavailable(f"conversation {key[1]!r} is not known to this instance")
        self.memory.restore(known.conversation)
        return self.journal.open(key, known.conversation, known.recent)

    async def _run(self, key: Key, size: int, write: Callable[[Lane], Awaitable[T]]) -> T:
        """Run a write on the lane of `key`, dropping the lane again if it was opened for nothing."""
        lane = self._lane(key)
        try:
            self.journal.admit(key[0], size)
            return await write(lane)
        finally:
            if not lane.entries:
                self._drop(lane)

    def _drop(self, lane: Lane) -> None:
        self.journal.discard(lane)
        if self.journal.lane(lane.key) is None:
            self.memory.forget(*lane.key)

    # -- writes -----------------------------------------------------------------------------------

    async def create(self, conversation: Conversation) -> Conversation:
        """A conversation under an id the server generated: nobody else can hold it."""
        key = (conversation.tenant, conversation.id)
        self.journal.admit(conversation.tenant, Create(conversation).size)
        created = await self.memory.create_conversation(conversation)
        lane = self.journal.open(key, None)
        self.journal.add(lane, Create(created))
        return created

    async def append(self, request: requests.Append) -> AppendOutcome:
        cid, messages = request.ref.conversation_id, request.messages
        fresh_size = sum(message_size(m) for m in messages)

        async def write(lane: Lane) -> AppendOutcome:
            conversation = await self.memory.get(request.ref)
            # ids Redis held before the outage: answered as stored, not stored again
            fresh = [m for m in messages if m.id not in lane.recent]
            outcome = None
            if fresh:
                outcome = await self.memory.append(replace(request, messages=fresh))
                conversation = outcome.conversation
            answers = iter(outcome.results if outcome is not None else ())
            results = [
                _held(cid, m, lane.recent[m.id]) if m.id in lane.recent else next(answers) for m in messages
            ]
            created = [(m, r) for m, r in zip(fresh, outcome.results if outcome else (), strict=True)]
            stored = tuple(m for m, r in created if r.created)
            if stored:
                acked = {r.message.id: r.message.seq for _, r in created if r.created}
                self.journal.add(lane, Append(replace(request, messages=stored), acked))
            return AppendOutcome(conversation, results, provisional=self.shared and bool(stored))

        return await self._run(request.ref.key, fresh_size, write)

    async def update(self, request: requests.Update) -> Conversation:
        r = request

        async def write(lane: Lane) -> Conversation:
            updated = await self.memory.update(r)
            self.journal.add(lane, Patch(r, updated.version))
            return updated

        return await self._run(r.ref.key, Patch(r, 0).size, write)

    async def touch(self, ref: requests.Ref) -> Conversation:
        async def write(lane: Lane) -> Conversation:
            touched = await self.memory.touch(ref)
            last = lane.entries[-1] if lane.entries else None
            if not (isinstance(last, Touch) and last.ref == ref):
                self.journal.add(lane, Touch(ref))
            return touched

        return await self._run(ref.key, OVERHEAD, write)

    async def delete(self, ref: requests.Ref) -> Conversation:
        async def write(lane: Lane) -> Conversation:
            deleted = await self.memory.delete(ref)
            self.journal.add(lane, Delete(ref))
            return deleted

        return await self._run(ref.key, OVERHEAD, write)

    async def extend(self, request: requests.Extend) -> Extension:
        async def write(lane: Lane) -> Extension:
            with self._held_messages(lane):
                extension = await self.memory.extend(request)
            if extension.appended:
                added = replace(request, text=extension.appended, offset=extension.offset)
                self.journal.add(lane, Extend(added))
            return extension

        return await self._run(request.ref.key, OVERHEAD + len(request.text.encode()), write)

    async def finish(self, request: requests.Finish) -> Message:
        r = request

        async def write(lane: Lane) -> Message:
            with self._held_messages(lane):
                message = await self.memory.finish(r)
            self.journal.add(lane, Finish(r))
            return message

        return await self._run(r.ref.key, OVERHEAD, write)

    async def interrupt_stale_streams(self, idle_ms: int, limit: int) -> list[tuple[Conversation, Message]]:
        stale = await self.memory.interrupt_stale_streams(idle_ms=idle_ms, limit=limit)
        for conversation, message in stale:
            lane = self.journal.lane((conversation.tenant, conversation.id))
            if lane is not None:  # journaled whatever the budget: it only ends what was accepted
                ended = requests.Finish(requests.Ref(*lane.key), message.id, MessageStatus.INTERRUPTED)
                self.journal.add(lane, Finish(ended), force=True)
        return stale

    @contextlib.contextmanager
    def _held_messages(self, lane: Lane) -> Iterator[None]:
        """A message stored before the outage is out of reach until the store is back."""
        try:
            yield
        except NotFound as exc:
            if exc.code == "message_not_found" and lane.base is not None:
                raise self.unavailable("the message was stored before the outage") from None
            raise

    # -- reads ------------------------------------------------------------------------------------

    async def get(self, ref: requests.Ref) -> Conversation:
        key, cid, scope = ref.key, ref.conversation_id, ref.scope
        if self.journal.lane(key) is not None:
            return await self.memory.get(ref)
        known = None if self.known.is_uncertain(key) else self.known.get(key)
        if known is None:
            raise self.unavailable(f"conversation {cid!r} is not known to this instance")
        c = known.conversation
        if not scope.admits(c.user, c.workspace):
            raise errors.conversation_not_found(cid)
        if is_expired(c, self.memory.now()):
            raise errors.conversation_expired(cid)
        return c

    async def read(self, request: requests.Read) -> MessagePage:
        """Messages written during the outage (all of a conversation created in it, or those after
        the seq Redis held); older ones are out of reach until the store is back."""
        c, after = request.conversation, request.after
        lane = self.journal.lane((c.tenant, c.id))
        if lane is not None and (lane.base is None or (after is not None and after >= lane.base.last_seq)):
            return await self.memory.read(request)
        raise self.unavailable("messages stored before the outage are out of reach until it ends")


def _held(cid: str, m: NewMessage, stored: tuple[int, int]) -> AppendResult:
    seq, created_at = stored
    message = Message(cid, m.id, seq, m.role, m.content, created_at, m.parts, m.metadata, m.usage, m.status)
    return AppendResult(message, created=False)
