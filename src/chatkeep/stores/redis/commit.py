"""The Redis store's one way to change a conversation: read a snapshot, plan the write with the
rules of `chatkeep.domain`, and commit the planned write set only if the conversation did not move
on meanwhile (see COMMIT in scripts.py). No rule is written in Lua."""

from __future__ import annotations

import asyncio
import random
import secrets
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import orjson

from chatkeep.domain import is_expired
from chatkeep.errors import StoreUnavailable
from chatkeep.models import Conversation, Message, MessageStatus, Scope
from chatkeep.stores.redis import codec
from chatkeep.stores.redis.codec import SEP
from chatkeep.stores.redis.core import RedisCore

# How many times a write is planned again after losing a race before it answers 503.
ROUNDS = 20
# Conversations whose record this process wrote last, remembered so the next write skips a read.
REMEMBERED = 4_096  # about 2 KB each (the record, and the conversation decoded)


@dataclass
class Snapshot:
    """A conversation as one READ found it: the record's fields, and the stored messages of the ids
    asked for (a message the trim dropped before stubs were kept comes back as a bare stub)."""

    record: dict[str, str]
    messages: dict[str, Message] = field(default_factory=dict)
    # when each of those messages last changed
    updated: dict[str, int] = field(default_factory=dict)
    # ids whose message the trim dropped before stubs were kept: id -> seq
    dropped: dict[str, int] = field(default_factory=dict)
    # ids taken to be absent without reading them (a recalled snapshot): COMMIT checks them
    absent: tuple[str, ...] = ()
    # the record's conversation, when known without decoding the record (a recalled snapshot)
    conversation: Conversation | None = None

    @property
    def stamp(self) -> str:
        return self.record.get("rev", "") + SEP + self.record.get("created", "")


@dataclass
class WriteSet:
    """What a commit sets besides the record: messages by seq, message ids by seq, and the streaming
    replies to note by message id, with when each last grew (None: no longer streaming)."""

    messages: dict[int, str] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)
    streaming: dict[str, int | None] = field(default_factory=dict)

    def put(self, message: Message, updated: int | None = None) -> None:
        self.messages[message.seq] = codec.encode(message, updated)
        self.ids[message.id] = message.seq
        if message.status is MessageStatus.STREAMING:
            self.streaming[message.id] = message.created_at if updated is None else updated

    def encode(self, absent: Sequence[str], record: dict[str, str]) -> bytes:
        """COMMIT's write set as one argument (all strings, as Redis stores them): the client packs
        each argument of a command on its own, which costs far more than encoding them together."""
        messages = [item for seq, raw in self.messages.items() for item in (str(seq), raw)]
        ids = [item for message_id, seq in self.ids.items() for item in (message_id, str(seq))]
        return orjson.dumps([absent, [item for pair in record.items() for item in pair], messages, ids])


class RedisCommits(RedisCore):
    """Snapshot reads and conditional commits of one conversation's keys.

    Writes to one conversation from this process take turns (`_turn`), so they never lose a race to
    each other; a race lost to another instance is planned again after a short random pause. The
    record a commit leaves is remembered, so the next write of the conversation here plans on it
    without reading (`_recall`); if another instance wrote meanwhile, COMMIT refuses and the write
    reads and plans again."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._turns: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        self._committed: OrderedDict[tuple[str, str], tuple[dict[str, str], Conversation]] = OrderedDict()

    def _turn(self, tenant: str, cid: str) -> asyncio.Lock:
        """The lock to hold while writing the conversation (kept while anyone holds or awaits it)."""
        lock = self._turns.get((tenant, cid))
        if lock is None:
            lock = self._turns[(tenant, cid)] = asyncio.Lock()
        return lock

    @staticmethod
    async def _pause(attempt: int) -> None:
        """Before planning again after a race lost to another instance."""
        if attempt:
            await asyncio.sleep(random.uniform(0, 0.002 * attempt))

    async def _read(self, tenant: str, cid: str, ids: Sequence[str] = ()) -> Snapshot:
        answer = await self._script("READ", self._conv_keys(tenant, cid), list(ids))
        snapshot = Snapshot(codec.pairs_of(answer[0]))
        found = answer[1]
        for k, message_id in enumerate(ids):
            seq, raw = found[2 * k], found[2 * k + 1]
            if raw:
                snapshot.messages[message_id], snapshot.updated[message_id] = codec.decode(cid, raw)
            elif seq:
                snapshot.dropped[message_id] = int(seq)
        return snapshot

    def _recall(self, tenant: str, cid: str, ids: Sequence[str] = ()) -> Snapshot | None:
        """The record this process committed last, if any; the `ids` are taken to be absent (COMMIT
        checks). A plan on it that fails is made again on a read, as it may be out of date."""
        committed = self._committed.get((tenant, cid))
        if committed is None:
            return None
        # Shared, not copied: a remembered record is replaced, never changed in place.
        record, conversation = committed
        return Snapshot(record, absent=tuple(ids), conversation=conversation)

    def _remember(self, key: tuple[str, str], record: dict[str, str], conversation: Conversation) -> None:
        self._committed[key] = (record, conversation)
        self._committed.move_to_end(key)
        if len(self._committed) > REMEMBERED:
            self._committed.popitem(last=False)

    async def _live(self, tenant: str, cid: str, snapshot: Snapshot, scope: Scope) -> Conversation:
        """The snapshot's conversation, if the caller may see it and it has not expired."""
        if snapshot.record:
            conversation = snapshot.conversation or codec.conversation_of(tenant, cid, snapshot.record)
            if scope.admits(conversation.user, conversation.workspace) and not is_expired(
                conversation, self._clock()
            ):
                return conversation
        raise await self._gone(tenant, cid, scope)

    async def _messages(self, tenant: str, cid: str, seqs: Iterable[int]) -> list[Message]:
        wanted = list(seqs)
        if not wanted:
            return []
        async with self._guard():
            rows = cast(list[str | None], await self._redis.hmget(self._conv_keys(tenant, cid)[1], wanted))
        return [codec.stored_message(cid, row) for row in rows if row]

    async def _commit(
        self,
        snapshot: Snapshot,
        after: Conversation,
        writes: WriteSet | None = None,
        *,
        reset: bool = False,
        listed: bool = False,
    ) -> bool:
        """Apply `after` (the record fields that differ from the snapshot's) and `writes`, unless the
        conversation changed since the snapshot. False when it did: plan again. Once committed, the
        streaming replies of `writes` are noted, and with `listed` the tenant's indexes brought in
        line with `after`: by the same script call on a standalone server, right after it on a
        Cluster (where those keys are in other slots)."""
        writes = writes or WriteSet()
        record = codec.record_of(after)
        if reset:
            record["rev"] = str(secrets.randbelow(2**40))
        else:
            record = {k: v for k, v in record.items() if snapshot.record.get(k) != v}
        args = [
            snapshot.stamp,
            "reset" if reset else "",
            codec.text(after.expires_at),
            writes.encode(snapshot.absent, record),
        ]
        key = (after.tenant, after.id)
        keys = self._conv_keys(after.tenant, after.id)
        together = listed and self._standalone
        if together:
            index = self._index_keys(after.tenant, after.user, after.workspace)
            notes = [
                item
                for message_id, updated in writes.streaming.items()
                for item in (self._stream_member(after.tenant, after.id, message_id), codec.text(updated))
            ]
            answer = await self._script(
                "COMMIT_LISTED", [*index, *keys, self._streams_key], [*args, *self._listing(after), *notes]
            )
        else:
            answer = await self._script("COMMIT", keys, args)
        if answer != "ok":
            self._committed.pop(key, None)
            return False
        left = {} if reset else dict(snapshot.record)
        left.update(record)
        left["rev"] = str(int(left.get("rev") or 0) + 1)
        self._remember(key, left, after)
        if together:
            await self._note_expiring(after)
            return True
        if listed:
            await self._listed(after)
        for message_id, updated in writes.streaming.items():
            await self._note_stream(after.tenant, after.id, message_id, updated)
        return True

    @property
    def _streams_key(self) -> str:
        return f"{self.prefix}:streaming"

    @staticmethod
    def _stream_member(tenant: str, cid: str, message_id: str) -> str:
        return SEP.join((tenant, cid, message_id))

    async def _note_stream(self, tenant: str, cid: str, message_id: str, updated: int | None) -> None:
        """Record (or with None, forget) when a streaming message was last extended."""
        member = self._stream_member(tenant, cid, message_id)
        async with self._guard():
            if updated is None:
                await self._redis.zrem(self._streams_key, member)
            else:
                await self._redis.zadd(self._streams_key, {member: updated})

    async def _drop(self, snapshot: Snapshot, tenant: str, cid: str) -> bool:
        self._committed.pop((tenant, cid), None)
        return bool(await self._script("DROP", self._conv_keys(tenant, cid), [snapshot.stamp]) == "ok")

    def _lost(self, cid: str) -> StoreUnavailable:
        return StoreUnavailable(f"conversation {cid!r} kept changing; try again", public="try again")
