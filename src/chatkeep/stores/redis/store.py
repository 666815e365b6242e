"""RedisStore: conversations in Redis (standalone or Cluster), with one sliding expiry per conversation.

Keys (prefix `ck` unless the URL says `?prefix=`):

    ck:{T:C}:c   hash: the conversation record          } one hash tag per conversation, one
    ck:{T:C}:m   hash: seq -> message                    } expiry (PEXPIREAT) on all three,
    ck:{T:C}:i   hash: message id -> seq                 } slid by every write and heartbeat
    ck:{T}:own   hash: conversation -> owner             } the tenant's indexes: ordered lists
    ck:{T}:all, :u:USER, :uw:USER:WS   sorted sets       } (score = pinned * 2^43 + last
    ck:{T}:exp   sorted set by expiry                    } activity ms), the expiry index and
    ck:{T}:tomb, :tombz   tombstones of swept ones       } the tombstones
    ck:{tenants}:all, ck:{tenants}:keys                    tenants and their API key hashes
    ck:expiring  set of tenants with expiring conversations, for the sweeper

A write runs as one Lua script on the conversation's keys (checks and write are atomic); the
tenant's indexes are updated right after by a second script in the tenant's slot. Reads of a list
trust the records over the indexes (a record that is gone or no longer matches is skipped).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import orjson

from chatkeep.domain import (
    PREVIEW_CHARS,
    check_batch,
    errors,
    fresh_conversation,
    local_only,
    matches,
)
from chatkeep.errors import (
    StoreUnavailable,
)
from chatkeep.models import (
    ANYONE,
    AppendOutcome,
    AppendResult,
    Conversation,
    ConversationCursor,
    ConversationPage,
    ConversationPatch,
    ConversationQuery,
    ExpiredConversation,
    LimitPolicy,
    MessageStatus,
    Mode,
    NewMessage,
    Scope,
    cursor_key,
)
from chatkeep.stores.redis import codec
from chatkeep.stores.redis.codec import PINNED, SEP
from chatkeep.stores.redis.streams import RedisStreams

# An append whose stored ids changed between its comparison and its write compares again.
APPEND_ROUNDS = 5


class RedisStore(RedisStreams):
    """URLs: `redis://host:6379/0`, `rediss://...` (TLS), `redis+cluster://host:7000` (a Redis
    Cluster, found from that node). Options: `prefix` (key prefix, default `ck`)."""

    # -- conversations ----------------------------------------------------------------------------

    async def create_conversation(
        self,
        conversation: Conversation,
        *,
        max_per_tenant: int | None = None,
        max_per_user: int | None = None,
    ) -> Conversation:
        now = self._clock()
        stored = fresh_conversation(conversation, now)
        answer = await self._script(
            "INDEX_RESERVE",
            self._index_keys(stored.tenant, stored.user, stored.workspace),
            [
                stored.id,
                codec.owner_of(stored),
                codec.list_score(stored),
                codec.opt(stored.expires_at),
                now,
                codec.opt(max_per_tenant),
                codec.opt(max_per_user),
            ],
        )
        if answer[0] == "exists":
            raise errors.conversation_exists(stored.id)
        if answer[0] in ("tenant_limit", "user_limit"):
            holder = "tenant" if answer[0] == "tenant_limit" else "user"
            limit = max_per_tenant if holder == "tenant" else max_per_user
            raise errors.conversation_limit(holder, int(answer[1]), cast(int, limit))
        result = await self._script(
            "CREATE", self._conv_keys(stored.tenant, stored.id), [now, *codec.record_fields(stored)]
        )
        if result == "exists":
            raise errors.conversation_exists(stored.id)
        await self._note_expiring(stored)
        return stored

    async def get_conversation(
        self, tenant: str, conversation_id: str, scope: Scope = ANYONE
    ) -> Conversation:
        async with self._guard():
            fields = cast(
                dict[str, str], await self._redis.hgetall(self._conv_keys(tenant, conversation_id)[0])
            )
        conversation = codec.conversation_of(tenant, conversation_id, fields) if fields else None
        if (
            conversation is None
            or not scope.admits(conversation.user, conversation.workspace)
            or (conversation.expires_at is not None and conversation.expires_at <= self._clock())
        ):
            raise await self._gone(tenant, conversation_id, scope)
        return conversation

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
                expired = conversation.expires_at is not None and conversation.expires_at <= now
                if not expired and matches(conversation, query):
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

    async def update_conversation(
        self,
        tenant: str,
        conversation_id: str,
        patch: ConversationPatch,
        *,
        expected_version: int | None = None,
        scope: Scope = ANYONE,
    ) -> Conversation:
        fields: list[Any] = []
        for name, value in (("title", patch.title), ("starred", patch.starred), ("pinned", patch.pinned),
                            ("archived", patch.archived)):  # fmt: skip
            if value is not None:
                fields += [name, codec.field_text(value)]
        if patch.tags is not None:
            fields += ["tags", orjson.dumps(list(patch.tags)).decode()]
        ttl = "keep" if patch.ttl is None else codec.opt(patch.ttl.ms)
        answer = await self._script(
            "UPDATE",
            self._conv_keys(tenant, conversation_id),
            [self._clock(), *codec.scope_args(scope), codec.opt(expected_version), ttl, *fields],
        )
        if answer[0] == "missing":
            raise await self._gone(tenant, conversation_id, scope)
        if answer[0] == "version":
            current = int(answer[1])
            raise errors.version_mismatch(conversation_id, current)
        updated = codec.conversation_of(tenant, conversation_id, codec.pairs_of(answer[1:]))
        await self._listed(updated)
        return updated

    async def touch_conversation(
        self, tenant: str, conversation_id: str, scope: Scope = ANYONE
    ) -> Conversation:
        answer = await self._script(
            "TOUCH", self._conv_keys(tenant, conversation_id), [self._clock(), *codec.scope_args(scope)]
        )
        if answer[0] == "missing":
            raise await self._gone(tenant, conversation_id, scope)
        touched = codec.conversation_of(tenant, conversation_id, codec.pairs_of(answer[1:]))
        await self._listed(touched)
        return touched

    async def delete_conversation(
        self, tenant: str, conversation_id: str, scope: Scope = ANYONE
    ) -> Conversation:
        answer = await self._script(
            "DELETE", self._conv_keys(tenant, conversation_id), [self._clock(), *codec.scope_args(scope)]
        )
        if answer[0] == "missing":
            raise await self._gone(tenant, conversation_id, scope)
        deleted = codec.conversation_of(tenant, conversation_id, codec.pairs_of(answer[1:]))
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
        check_batch(messages)
        now = self._clock()
        args: list[Any] = [
            now,
            codec.opt(max_messages),
            policy.value,
            *codec.scope_args(scope),
            len(messages),
        ]
        for new in messages:
            args += [
                new.id,
                codec.message_body(new),
                new.content[:PREVIEW_CHARS],
                new.usage.input_tokens,
                new.usage.output_tokens,
            ]
        # Stored ids are compared here (one rule, in base.py) before anything is written: the script
        # answers 'seen' with the stored messages, and writes only once told how many were compared.
        compared = ""
        for _ in range(APPEND_ROUNDS):
            answer = await self._script("APPEND", self._conv_keys(tenant, conversation_id), [*args, compared])
            if answer[0] != "seen":
                break
            olds = codec.replays(conversation_id, messages, answer)
            compared = str(len(olds))
        else:
            raise StoreUnavailable(
                f"conversation {conversation_id!r} kept changing; try again", public="try again"
            )
        status = answer[0]
        if status == "missing":
            raise await self._gone(tenant, conversation_id, scope)
        if status == "local_only":
            raise local_only(conversation_id)
        if status == "limit":
            raise errors.message_limit(conversation_id, int(answer[1]), cast(int, max_messages))
        olds = codec.replays(conversation_id, messages, answer)
        conversation = codec.conversation_of(
            tenant, conversation_id, codec.pairs_of(answer[1 + 2 * len(messages) :])
        )
        results: list[AppendResult] = []
        for k, new in enumerate(messages):
            kind, value = answer[1 + 2 * k], answer[2 + 2 * k]
            if kind == "new":
                results.append(
                    AppendResult(codec.created_message(conversation_id, new, int(value), now), created=True)
                )
            elif kind == "dup":
                results.append(AppendResult(results[int(value)].message, created=False))
            else:
                results.append(AppendResult(olds[k], created=False))
        if any(r.created for r in results):
            await self._listed(conversation)
        streams = [r.message for r in results if r.created and r.message.status is MessageStatus.STREAMING]
        for message in streams:
            await self._note_stream(tenant, conversation_id, message.id, message.created_at)
        return AppendOutcome(conversation, results)
