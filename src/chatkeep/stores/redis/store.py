"""RedisStore: conversations in Redis (standalone or Cluster), with one sliding expiry per conversation.

Keys (prefix `ck` unless the URL says `?prefix=`):

    ck:{T:C}:c   hash: the conversation record          } one hash tag per conversation, one
    ck:{T:C}:m   hash: seq -> message                    } expiry (PEXPIREAT) on all three,
    ck:{T:C}:i   hash: message id -> seq                 } slid by every write and heartbeat
    ck:{T}:own   hash: conversation -> owner             } the tenant's indexes: ordered lists
    ck:{T}:all, :u:USER, :uw:USER:WS   sorted sets       } (score = pinned * 2^43 + last
    ck:{T}:exp   sorted set by expiry                    } activity ms), the expiry index and
    ck:{T}:tomb, :tombz   tombstones of swept ones       } the tombstones
    ck:expiring  set of tenants with expiring conversations, for the sweeper

A write to a conversation reads a snapshot of its keys, plans the write with `chatkeep.domain` and
commits the write set only if the conversation did not change meanwhile (`commit.py`); the
tenant's indexes are updated by the same script call on a standalone server, and right after it by
a script in the tenant's slot on a Cluster. A message the trim dropped stays as its stub (id, seq,
role, time, usage). Reads of a list trust the records over the indexes (a record that is gone or no
longer matches is skipped).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import cast

from chatkeep.domain import (
    apply_patch,
    check_import,
    check_quota,
    check_reimport,
    errors,
    fresh_conversation,
    is_expired,
    matches,
    plan_append,
    touched,
    trimmed,
)
from chatkeep.errors import ChatkeepError, Conflict
from chatkeep.models import (
    AppendOutcome,
    Conversation,
    ConversationCursor,
    ConversationPage,
    ConversationQuery,
    ExpiredConversation,
    Message,
    MessageStatus,
    Mode,
    SearchPage,
    SearchQuery,
    cursor_key,
)
from chatkeep.stores.redis import codec
from chatkeep.stores.redis.codec import PINNED, SEP
from chatkeep.stores.redis.commit import ROUNDS, WriteSet
from chatkeep.stores.redis.streams import RedisStreams
from chatkeep.stores.requests import Append, Create, Ref, Update
from chatkeep.stores.scan import scan_search

TRIMMED = MessageStatus.TRIMMED
# The bounds of one search (Redis keeps no full-text index; see Store.search and stores/scan.py).
SEARCH_MAX_CONVERSATIONS = 200
SEARCH_MAX_MESSAGES = 5_000


class RedisStore(RedisStreams):
    """URLs: `redis://host:6379/0`, `rediss://...` (TLS), `redis+cluster://host:7000` (a Redis
    Cluster, found from that node). Options: `prefix` (key prefix, default `ck`)."""

    # -- conversations ----------------------------------------------------------------------------

    async def create(self, request: Create) -> Conversation:
        now = self._clock()
        stored = fresh_conversation(request.conversation, now)
        await self._reserve(stored, now, request.max_per_tenant, request.max_per_user)
        async with self._turn(stored.tenant, stored.id):
            for attempt in range(ROUNDS):
                await self._pause(attempt)
                snapshot = await self._read(stored.tenant, stored.id)
                if snapshot.record and not is_expired(
                    codec.conversation_of(stored.tenant, stored.id, snapshot.record), now
                ):
                    raise errors.conversation_exists(stored.id)
                if await self._commit(snapshot, stored, reset=True):
                    break
            else:
                raise self._lost(stored.id)
        await self._note_expiring(stored)
        return stored

    async def _reserve(
        self, stored: Conversation, now: int, max_per_tenant: int | None, max_per_user: int | None
    ) -> None:
        """List a new conversation in its tenant's indexes, unless its id is taken or a quota would
        pass (checked by the domain against counts that no other create changed meanwhile)."""
        keys = self._index_keys(stored.tenant, stored.user, stored.workspace)
        listed = [
            stored.id,
            codec.owner_of(stored),
            codec.list_score(stored),
            codec.opt(stored.expires_at),
            now,
        ]
        quota = max_per_tenant is not None or max_per_user is not None
        # Creates under a quota take turns in this process: their counts would move under each other.
        async with self._turn(stored.tenant, "") if quota else contextlib.nullcontext():
            for attempt in range(ROUNDS):
                await self._pause(attempt)
                seen = ""
                if quota:
                    tenant_count, user_count, seen, taken = await self._script(
                        "INDEX_COUNTS", keys, [now, stored.id]
                    )
                    if taken:
                        raise errors.conversation_exists(stored.id)
                    check_quota(int(tenant_count), int(user_count), max_per_tenant, max_per_user)
                answer = await self._script("INDEX_RESERVE", keys, [*listed, seen])
                if answer[0] == "exists":
                    raise errors.conversation_exists(stored.id)
                if answer[0] == "ok":
                    return
            raise self._lost(stored.id)

    async def get(self, ref: Ref) -> Conversation:
        return await self._live(*ref.key, await self._read(*ref.key), ref.scope)

    async def list_conversations(self, query: ConversationQuery) -> ConversationPage:
        if query.user is not None and query.workspace is not None:
            index = self._tenant_key(query.tenant, f"uw:{query.user}:{query.workspace}")
        elif query.user is not None:
            index = self._tenant_key(query.tenant, f"u:{query.user}")
        else:
            index = self._tenant_key(query.tenant, "all")
        now = self._clock()
        bound = cursor_key(query.after) if query.after is not None else None
        top: float | str = "+inf" if query.after is None else codec.cursor_score(query.after)
        found: list[tuple[Conversation, tuple[bool, int, str]]] = []
        batch = max(2 * query.limit, 20)
        offset = 0
        while len(found) <= query.limit:
            async with self._guard():
                chunk = cast(
                    list[tuple[str, float]],
                    await self._redis.zrevrangebyscore(
                        index, top, "-inf", start=offset, num=batch, withscores=True
                    ),
                )
                records = await self._records(query.tenant, [cid for cid, _ in chunk])
            for (cid, score), fields in zip(chunk, records, strict=True):
                position = (score >= PINNED, int(score % PINNED), cid)
                if bound is not None and position >= bound:
                    continue
                if not fields:
                    continue
                conversation = codec.conversation_of(query.tenant, cid, fields)
                if not is_expired(conversation, now) and matches(conversation, query):
                    found.append((conversation, position))
            if len(chunk) < batch:
                break
            offset += batch
        page = found[: query.limit]
        more = len(found) > query.limit
        cursor = ConversationCursor(*page[-1][1]) if more and page else None
        return ConversationPage([c for c, _ in page], cursor)

    async def _records(self, tenant: str, ids: Sequence[str]) -> list[dict[str, str]]:
        if not ids:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for cid in ids:
            pipe.hgetall(self._conv_keys(tenant, cid)[0])
        return list(await pipe.execute())

    async def count_conversations(self, tenant: str, user: str | None = None) -> int:
        keys = self._list_keys(tenant, f"u:{user}" if user is not None else "all")
        return int(await self._script("INDEX_COUNT", keys, [self._clock()]))

    async def update(self, request: Update) -> Conversation:
        r = request
        return await self._rewrite(
            r.ref, lambda c: apply_patch(c, r.patch, self._clock(), r.expected_version)
        )

    async def touch(self, ref: Ref) -> Conversation:
        return await self._rewrite(ref, lambda c: touched(c, self._clock()))

    async def _rewrite(self, ref: Ref, change: Callable[[Conversation], Conversation]) -> Conversation:
        """Commit `change` of the conversation's record, planned again on a lost race."""
        (tenant, cid), scope = ref.key, ref.scope
        async with self._turn(tenant, cid):
            for attempt in range(ROUNDS):
                await self._pause(attempt)
                recalled = self._recall(tenant, cid) if attempt == 0 else None
                snapshot = recalled or await self._read(tenant, cid)
                try:
                    after = change(await self._live(tenant, cid, snapshot, scope))
                except ChatkeepError:
                    if recalled is None:
                        raise
                    continue  # perhaps only because another instance wrote since: read
                if await self._commit(snapshot, after, listed=True):
                    return after
            raise self._lost(cid)

    async def delete(self, ref: Ref) -> Conversation:
        (tenant, conversation_id), scope = ref.key, ref.scope
        async with self._turn(tenant, conversation_id):
            for attempt in range(ROUNDS):
                await self._pause(attempt)
                snapshot = await self._read(tenant, conversation_id)
                deleted = await self._live(tenant, conversation_id, snapshot, scope)
                if await self._drop(snapshot, tenant, conversation_id):
                    break
            else:
                raise self._lost(conversation_id)
        await self._script(
            "INDEX_REMOVE", self._index_keys(tenant, deleted.user, deleted.workspace), [conversation_id]
        )
        return deleted

    async def sweep_expired(self, *, limit: int = 500, keep_ms: int = 0) -> list[ExpiredConversation]:
        async with self._guard():
            tenants = sorted(cast(set[str], await self._redis.smembers(f"{self.prefix}:expiring")))
        swept: list[ExpiredConversation] = []
        for tenant in tenants:
            if len(swept) >= limit:
                break
            swept += await self._sweep_tenant(tenant, limit - len(swept), keep_ms)
        return swept

    async def _sweep_tenant(self, tenant: str, limit: int, keep_ms: int) -> list[ExpiredConversation]:
        keys = self._list_keys(tenant)
        now = self._clock()
        due = await self._script("SWEEP_DUE", keys, [now, limit, keep_ms])
        candidates = [due[k] for k in range(0, len(due), 3)]
        if not candidates:
            return []
        records = await self._records(tenant, candidates)
        gone = []
        for cid, fields in zip(candidates, records, strict=True):
            if fields:  # still alive: written again after the index was read; repair the index
                await self._listed(codec.conversation_of(tenant, cid, fields))
            else:
                gone.append(cid)
        if not gone:
            return []
        taken = await self._script("SWEEP_FINISH", keys, [now, *gone])
        result = []
        for k in range(0, len(taken), 3):
            user, workspace, mode = (taken[k + 1].split(SEP) + ["", "", "ephemeral"])[:3]
            result.append(
                ExpiredConversation(tenant, taken[k], workspace, user, Mode(mode), int(float(taken[k + 2])))
            )
        return result

    # -- messages ---------------------------------------------------------------------------------

    async def append(self, request: Append) -> AppendOutcome:
        (tenant, conversation_id), scope, messages = request.ref.key, request.ref.scope, request.messages
        ids = list(dict.fromkeys(m.id for m in messages))
        async with self._turn(tenant, conversation_id):
            for attempt in range(ROUNDS):
                await self._pause(attempt)
                now = self._clock()
                recalled = self._recall(tenant, conversation_id, ids) if attempt == 0 else None
                snapshot = recalled or await self._read(tenant, conversation_id, ids)
                try:
                    before = await self._live(tenant, conversation_id, snapshot, scope)
                    existing = dict(snapshot.messages)
                    for new in messages:  # dropped by the trim before stubs were kept: only id and seq remain
                        if new.id in snapshot.dropped:
                            seq = snapshot.dropped[new.id]
                            existing[new.id] = Message(
                                conversation_id, new.id, seq, new.role, "", 0, status=TRIMMED
                            )
                    plan = plan_append(
                        before,
                        existing,
                        messages,
                        now,
                        max_messages=request.max_messages,
                        policy=request.policy,
                    )
                except ChatkeepError:
                    if recalled is None:
                        raise
                    continue  # planned on what this process wrote last, which took the ids as new: read
                if not plan.inserts:
                    return AppendOutcome(before, plan.results)
                writes = WriteSet()
                for old in await self._messages(tenant, conversation_id, plan.trimmed_seqs(before)):
                    writes.messages[old.seq] = codec.encode(trimmed(old))
                for message in plan.inserts:
                    writes.put(message)
                if await self._commit(snapshot, plan.conversation, writes, listed=True):
                    break
            else:
                raise self._lost(conversation_id)
        return AppendOutcome(plan.conversation, plan.results)

    # -- search -----------------------------------------------------------------------------------

    async def search(self, query: SearchQuery) -> SearchPage:
        """A bounded scan: the caller's `SEARCH_MAX_CONVERSATIONS` most recently active conversations
        and at most `SEARCH_MAX_MESSAGES` of their messages (newest first); `partial` past either."""
        return await scan_search(
            self, query, max_conversations=SEARCH_MAX_CONVERSATIONS, max_messages=SEARCH_MAX_MESSAGES
        )

    # -- import -----------------------------------------------------------------------------------

    async def import_conversation(self, conversation: Conversation, messages: Sequence[Message]) -> bool:
        c = conversation
        check_import(c, messages, self._clock())
        held = await self._held(c.tenant, c.id)
        if held is not None:
            return check_reimport(*held, c, messages)
        try:
            await self._reserve(c, self._clock(), None, None)
        except Conflict:  # listed meanwhile by a concurrent import or create
            held = await self._held(c.tenant, c.id)
            if held is None:
                raise
            return check_reimport(*held, c, messages)
        writes = WriteSet()
        for message in messages:
            writes.put(message)
        async with self._turn(c.tenant, c.id):
            for attempt in range(ROUNDS):
                await self._pause(attempt)
                snapshot = await self._read(c.tenant, c.id)
                if await self._commit(snapshot, c, writes, reset=True, listed=True):
                    break
            else:
                raise self._lost(c.id)
        return True

    async def _held(self, tenant: str, cid: str) -> tuple[Conversation, list[Message]] | None:
        """The live conversation with this id and its retained messages, or None."""
        snapshot = await self._read(tenant, cid)
        if not snapshot.record:
            return None
        stored = codec.conversation_of(tenant, cid, snapshot.record)
        if is_expired(stored, self._clock()):
            return None
        return stored, await self._messages(tenant, cid, range(stored.first_seq, stored.last_seq + 1))
