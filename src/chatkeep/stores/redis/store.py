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

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace
from typing import Any, cast

import orjson
import redis.asyncio as aioredis
import redis.exceptions as rexc
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from chatkeep.errors import (
    ChatkeepError,
    Conflict,
    Expired,
    NotFound,
    QuotaExceeded,
    StoreUnavailable,
    VersionMismatch,
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
    Message,
    MessagePage,
    MessageStatus,
    Mode,
    NewMessage,
    Role,
    Scope,
    Tenant,
    TenantSettings,
    Usage,
    cursor_key,
    now_ms,
)
from chatkeep.stores.base import (
    PREVIEW_CHARS,
    Extension,
    Store,
    check_batch,
    check_replay,
    finished,
    fresh_conversation,
    local_only,
    matches,
    plan_extend,
)
from chatkeep.stores.redis import scripts
from chatkeep.stores.url import StoreURL

SWAP_ATTEMPTS = 20
# An append whose stored ids changed between its comparison and its write compares again.
APPEND_ROUNDS = 5
PINNED = 2**43  # the list score of a pinned conversation is offset by this (above any ms timestamp)
SEP = "\x1f"
UNAVAILABLE = (rexc.ConnectionError, rexc.TimeoutError, rexc.BusyLoadingError, rexc.ClusterError, OSError)
Client = aioredis.Redis | RedisCluster


class RedisStore(Store):
    """URLs: `redis://host:6379/0`, `rediss://...` (TLS), `redis+cluster://host:7000` (a Redis
    Cluster, found from that node). Options: `prefix` (key prefix, default `ck`)."""

    def __init__(
        self, url: StoreURL | str, *, client: Client | None = None, clock: Callable[[], int] = now_ms
    ) -> None:
        self.url = url if isinstance(url, StoreURL) else StoreURL.parse(url)
        self.prefix = self.url.options.get("prefix", "ck")
        self.cluster = self.url.scheme == "redis+cluster"
        self._client = client
        self._owns_client = client is None
        self._clock = clock
        self._scripts: dict[str, Any] = {}
        self._expiring_known: set[str] = set()

    def __repr__(self) -> str:
        return f"RedisStore({self.url.redacted!r})"

    # -- lifecycle --------------------------------------------------------------------------------

    async def connect(self) -> None:
        if self._client is None:
            options: dict[str, Any] = {
                "decode_responses": True,
                "socket_connect_timeout": 2,
                "socket_timeout": 5,
                "retry": Retry(NoBackoff(), 1),
            }
            if self.cluster:
                url = self.url.without_options().replace("redis+cluster://", "redis://", 1)
                self._client = RedisCluster.from_url(url, **options)
            else:
                self._client = aioredis.Redis.from_url(self.url.without_options(), **options)
        for name, source in vars(scripts).items():
            if name.isupper() and not name.startswith("_") and isinstance(source, str):
                self._scripts[name] = self._client.register_script(source)
        await self.ping()

    async def close(self) -> None:
        if self._client is not None and self._owns_client:
            with contextlib.suppress(Exception):
                await self._client.aclose()
            self._client = None

    async def ping(self) -> None:
        async with self._guard():
            await self._redis.ping()

    @property
    def _redis(self) -> Client:
        if self._client is None:
            raise StoreUnavailable(f"{self.url.redacted} is not connected")
        return self._client

    @contextlib.asynccontextmanager
    async def _guard(self) -> AsyncIterator[None]:
        try:
            yield
        except ChatkeepError:
            raise
        except UNAVAILABLE as exc:
            raise StoreUnavailable(f"{self.url.redacted} is unavailable ({type(exc).__name__})") from exc

    async def _script(self, name: str, keys: list[str], args: list[Any]) -> Any:
        async with self._guard():
            return await self._scripts[name](keys=keys, args=args)

    # -- keys -------------------------------------------------------------------------------------

    def _conv_keys(self, tenant: str, cid: str) -> list[str]:
        base = f"{self.prefix}:{{{tenant}:{cid}}}"
        return [f"{base}:c", f"{base}:m", f"{base}:i"]

    def _tenant_key(self, tenant: str, name: str) -> str:
        return f"{self.prefix}:{{{tenant}}}:{name}"

    def _index_keys(self, tenant: str, user: str, workspace: str) -> list[str]:
        """The KEYS of a tenant script for one conversation's owner (see scripts.py)."""
        k = self._tenant_key
        return [
            k(tenant, "own"),
            k(tenant, "all"),
            k(tenant, f"u:{user}"),
            k(tenant, f"uw:{user}:{workspace}"),
            k(tenant, "exp"),
            k(tenant, "tomb"),
            k(tenant, "tombz"),
        ]

    def _list_keys(self, tenant: str, index: str = "all") -> list[str]:
        """The KEYS of a tenant script that reads one list (`index`) rather than an owner's lists."""
        keys = self._index_keys(tenant, "", "")
        keys[1:4] = [self._tenant_key(tenant, index)] * 3
        return keys

    # -- tenants ----------------------------------------------------------------------------------

    def _tenant_keys(self) -> list[str]:
        return [f"{self.prefix}:{{tenants}}:all", f"{self.prefix}:{{tenants}}:keys"]

    async def create_tenant(self, tenant: Tenant) -> None:
        answer = await self._script(
            "TENANT_CREATE", self._tenant_keys(), [tenant.id, _tenant_json(tenant), tenant.api_key_hash]
        )
        if answer == "exists":
            raise Conflict(f"tenant {tenant.id!r} exists", code="tenant_exists")

    async def get_tenant(self, tenant_id: str) -> Tenant | None:
        async with self._guard():
            raw = cast(str | None, await self._redis.hget(self._tenant_keys()[0], tenant_id))
        return None if raw is None else _tenant(raw)

    async def get_tenant_by_key_hash(self, key_hash: str) -> Tenant | None:
        async with self._guard():
            tenant_id = cast(str | None, await self._redis.hget(self._tenant_keys()[1], key_hash))
        return None if tenant_id is None else await self.get_tenant(tenant_id)

    async def list_tenants(self) -> list[Tenant]:
        async with self._guard():
            everything = cast(dict[str, str], await self._redis.hgetall(self._tenant_keys()[0]))
        return sorted((_tenant(raw) for raw in everything.values()), key=lambda t: t.id)

    async def update_tenant(self, tenant: Tenant) -> None:
        answer = await self._script(
            "TENANT_UPDATE", self._tenant_keys(), [tenant.id, _tenant_json(tenant), tenant.api_key_hash]
        )
        if answer == "missing":
            raise NotFound(f"tenant {tenant.id!r} not found")

    # -- conversations ----------------------------------------------------------------------------

    async def _listed(self, conversation: Conversation) -> None:
        """Bring the tenant's indexes in line with this record."""
        c = conversation
        await self._script(
            "INDEX_PUT",
            self._index_keys(c.tenant, c.user, c.workspace),
            [c.id, _owner(c), _score(c), _opt(c.expires_at)],
        )
        await self._note_expiring(c)

    async def _note_expiring(self, conversation: Conversation) -> None:
        if conversation.expires_at is not None and conversation.tenant not in self._expiring_known:
            async with self._guard():
                await self._redis.sadd(f"{self.prefix}:expiring", conversation.tenant)
            self._expiring_known.add(conversation.tenant)

    async def _gone(self, tenant: str, cid: str, scope: Scope) -> ChatkeepError:
        """The error for a conversation whose record is not there: Expired if the tenant still
        remembers it (and the caller may know), NotFound otherwise."""
        answer = await self._script("GONE", self._list_keys(tenant), [cid, self._clock()])
        if answer[0] in ("tomb", "expired"):
            user, workspace, *_ = (answer[1] or f"{SEP}{SEP}").split(SEP)
            if user and scope.admits(user, workspace):
                return Expired(f"conversation {cid!r} expired")
        return NotFound(f"conversation {cid!r} not found")

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
                _owner(stored),
                _score(stored),
                _opt(stored.expires_at),
                now,
                _opt(max_per_tenant),
                _opt(max_per_user),
            ],
        )
        if answer[0] == "exists":
            raise Conflict(f"conversation {stored.id!r} exists", code="conversation_exists")
        if answer[0] in ("tenant_limit", "user_limit"):
            limit = max_per_tenant if answer[0] == "tenant_limit" else max_per_user
            who = "tenant" if answer[0] == "tenant_limit" else "user"
            raise QuotaExceeded(
                f"the {who} holds {answer[1]} conversations; the limit is {limit}",
                code="conversation_limit",
                limit=limit,
            )
        result = await self._script(
            "CREATE", self._conv_keys(stored.tenant, stored.id), [now, *_record_fields(stored)]
        )
        if result == "exists":
            raise Conflict(f"conversation {stored.id!r} exists", code="conversation_exists")
        await self._note_expiring(stored)
        return stored

    async def get_conversation(
        self, tenant: str, conversation_id: str, scope: Scope = ANYONE
    ) -> Conversation:
        async with self._guard():
            fields = cast(
                dict[str, str], await self._redis.hgetall(self._conv_keys(tenant, conversation_id)[0])
            )
        conversation = _conversation(tenant, conversation_id, fields) if fields else None
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
        top: float | str = "+inf" if query.after is None else _score_of(query.after)
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
                conversation = _conversation(query.tenant, cid, fields)
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
                fields += [name, _field(value)]
        if patch.tags is not None:
            fields += ["tags", orjson.dumps(list(patch.tags)).decode()]
        ttl = "keep" if patch.ttl is None else _opt(patch.ttl.ms)
        answer = await self._script(
            "UPDATE",
            self._conv_keys(tenant, conversation_id),
            [self._clock(), *_scope_args(scope), _opt(expected_version), ttl, *fields],
        )
        if answer[0] == "missing":
            raise await self._gone(tenant, conversation_id, scope)
        if answer[0] == "version":
            current = int(answer[1])
            raise VersionMismatch(
                f"conversation {conversation_id!r} is at version {current}", current_version=current
            )
        updated = _conversation(tenant, conversation_id, _pairs(answer[1:]))
        await self._listed(updated)
        return updated

    async def touch_conversation(
        self, tenant: str, conversation_id: str, scope: Scope = ANYONE
    ) -> Conversation:
        answer = await self._script(
            "TOUCH", self._conv_keys(tenant, conversation_id), [self._clock(), *_scope_args(scope)]
        )
        if answer[0] == "missing":
            raise await self._gone(tenant, conversation_id, scope)
        touched = _conversation(tenant, conversation_id, _pairs(answer[1:]))
        await self._listed(touched)
        return touched

    async def delete_conversation(
        self, tenant: str, conversation_id: str, scope: Scope = ANYONE
    ) -> Conversation:
        answer = await self._script(
            "DELETE", self._conv_keys(tenant, conversation_id), [self._clock(), *_scope_args(scope)]
        )
        if answer[0] == "missing":
            raise await self._gone(tenant, conversation_id, scope)
        deleted = _conversation(tenant, conversation_id, _pairs(answer[1:]))
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
                await self._listed(_conversation(tenant, cid, fields))
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
        args: list[Any] = [now, _opt(max_messages), policy.value, *_scope_args(scope), len(messages)]
        for new in messages:
            args += [
                new.id,
                _message_body(new),
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
            olds = _replays(conversation_id, messages, answer)
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
            raise QuotaExceeded(
                f"conversation {conversation_id!r} holds {answer[1]} messages; the limit is {max_messages}",
                code="message_limit",
                limit=max_messages,
            )
        olds = _replays(conversation_id, messages, answer)
        conversation = _conversation(tenant, conversation_id, _pairs(answer[1 + 2 * len(messages) :]))
        results: list[AppendResult] = []
        for k, new in enumerate(messages):
            kind, value = answer[1 + 2 * k], answer[2 + 2 * k]
            if kind == "new":
                results.append(AppendResult(_created(conversation_id, new, int(value), now), created=True))
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
        answer = await self._script("GET_MESSAGE", keys, [self._clock(), *_scope_args(scope), message_id])
        if answer[0] == "missing":
            raise await self._gone(tenant, cid, scope)
        if answer[0] == "no_message":
            raise NotFound(f"message {message_id!r} not found", code="message_not_found")
        return _conversation(tenant, cid, _pairs(answer[3:])), answer[2]

    async def _swap(
        self, tenant: str, cid: str, stored: str, after: Message, before: Message, now: int, scope: Scope
    ) -> Conversation | None:
        """Replace a message read as `stored` with `after`, unless it changed meanwhile (None)."""
        answer = await self._script(
            "SWAP_MESSAGE",
            self._conv_keys(tenant, cid),
            [
                now,
                *_scope_args(scope),
                after.seq,
                stored,
                _encode(after, now),
                after.usage.input_tokens - before.usage.input_tokens,
                after.usage.output_tokens - before.usage.output_tokens,
                after.content[:PREVIEW_CHARS],
            ],
        )
        if answer[0] == "missing":
            raise await self._gone(tenant, cid, scope)
        if answer[0] == "changed":
            return None
        conversation = _conversation(tenant, cid, _pairs(answer[1:]))
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
            message, _ = _decode(conversation_id, stored)
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
            before, _ = _decode(conversation_id, stored)
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
            message, updated = _decode(cid, stored)
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
        answer = await self._script("PAGE", keys, [_opt(before), _opt(after), limit])
        rows = [row for row in answer[1:] if row]
        return MessagePage(
            [_stored(conversation.id, row) for row in rows], has_more=bool(answer[0]) and bool(rows)
        )


# -- encoding ---------------------------------------------------------------------------------------


def _opt(value: int | None) -> str | int:
    return "" if value is None else value


def _field(value: bool | str) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return value


def _scope_args(scope: Scope) -> list[str]:
    workspaces = "*" if scope.workspaces is None else SEP.join(sorted(scope.workspaces))
    return [scope.user or "", workspaces]


def _owner(c: Conversation) -> str:
    return SEP.join((c.user, c.workspace, c.mode.value))


def _score(c: Conversation) -> int:
    return c.last_activity_at + (PINNED if c.pinned else 0)


def _score_of(cursor: ConversationCursor) -> int:
    return cursor.last_activity_at + (PINNED if cursor.pinned else 0)


def _pairs(flat: Sequence[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _record_fields(c: Conversation) -> list[Any]:
    values = {
        "ws": c.workspace,
        "user": c.user,
        "mode": c.mode.value,
        "title": c.title,
        "created": c.created_at,
        "active": c.last_activity_at,
        "starred": _field(c.starred),
        "pinned": _field(c.pinned),
        "archived": _field(c.archived),
        "tags": orjson.dumps(list(c.tags)).decode(),
        "count": c.message_count,
        "last": c.last_seq,
        "preview": c.preview,
        "in": c.usage.input_tokens,
        "out": c.usage.output_tokens,
        "version": c.version,
        "ttl": _opt(c.ttl_ms),
        "exp": _opt(c.expires_at),
    }
    return [item for pair in values.items() for item in pair]


def _conversation(tenant: str, cid: str, f: dict[str, str]) -> Conversation:
    return Conversation(
        tenant=tenant,
        id=cid,
        workspace=f["ws"],
        user=f["user"],
        mode=Mode(f["mode"]),
        title=f["title"],
        created_at=int(f["created"]),
        last_activity_at=int(f["active"]),
        starred=f["starred"] == "1",
        pinned=f["pinned"] == "1",
        archived=f["archived"] == "1",
        tags=tuple(orjson.loads(f["tags"])),
        message_count=int(f["count"]),
        last_seq=int(f["last"]),
        preview=f["preview"],
        usage=Usage(int(f["in"]), int(f["out"])),
        version=int(f["version"]),
        ttl_ms=int(f["ttl"]) if f["ttl"] else None,
        expires_at=int(f["exp"]) if f["exp"] else None,
    )


def _body(m: NewMessage | Message) -> dict[str, Any]:
    """What the `m` hash keeps of a message besides its seq and creation time."""
    return {
        "id": m.id,
        "role": m.role.value,
        "content": m.content,
        "parts": m.parts,
        "metadata": m.metadata,
        "in": m.usage.input_tokens,
        "out": m.usage.output_tokens,
        "status": m.status.value,
    }


def _message_body(m: NewMessage) -> str:
    return orjson.dumps(_body(m)).decode()


def _replays(cid: str, messages: Sequence[NewMessage], answer: list[Any]) -> dict[int, Message]:
    """The stored messages an APPEND answer names ('old'), by position in the batch, each checked
    to be the same message as the one appended again (`check_replay`)."""
    olds: dict[int, Message] = {}
    for k, new in enumerate(messages):
        kind, value = answer[1 + 2 * k], answer[2 + 2 * k]
        if kind != "old":
            continue
        if value.startswith("trimmed:"):
            stored = Message(cid, new.id, int(value[8:]), new.role, "", 0, status=MessageStatus.TRIMMED)
        else:
            stored = _stored(cid, value)
        olds[k] = check_replay(stored, new)
    return olds


def _created(cid: str, m: NewMessage, seq: int, now: int) -> Message:
    return Message(cid, m.id, seq, m.role, m.content, now, m.parts, m.metadata, m.usage, m.status)


def _encode(m: Message, updated: int) -> str:
    """A message as stored in the `m` hash: [seq, created_at, body]; `updated` is when it last changed."""
    return orjson.dumps([m.seq, m.created_at, {**_body(m), "updated": updated}]).decode()


def _decode(cid: str, raw: str) -> tuple[Message, int]:
    """A stored message and when it last changed."""
    seq, created_at, body = orjson.loads(raw)
    updated = body.get("updated")
    return _message(cid, seq, created_at, body), updated if updated is not None else created_at


def _stored(cid: str, raw: str) -> Message:
    seq, created_at, body = orjson.loads(raw)
    return _message(cid, seq, created_at, body)


def _message(cid: str, seq: int, created_at: int, body: dict[str, Any]) -> Message:
    return Message(
        conversation_id=cid,
        id=body["id"],
        seq=seq,
        role=Role(body["role"]),
        content=body["content"],
        created_at=created_at,
        parts=body["parts"],
        metadata=body["metadata"],
        usage=Usage(body["in"], body["out"]),
        status=MessageStatus(body["status"]),
    )


def _tenant_json(t: Tenant) -> str:
    return orjson.dumps(
        {
            "id": t.id,
            "name": t.name,
            "api_key_hash": t.api_key_hash,
            "token_secret": t.token_secret,
            "created_at": t.created_at,
            "settings": t.settings.to_json(),
            "previous_token_secret": t.previous_token_secret,
            "previous_secret_expires_at": t.previous_secret_expires_at,
        }
    ).decode()


def _tenant(raw: str) -> Tenant:
    d = orjson.loads(raw)
    return Tenant(
        id=d["id"],
        name=d["name"],
        api_key_hash=d["api_key_hash"],
        token_secret=d["token_secret"],
        created_at=d["created_at"],
        settings=TenantSettings.from_json(d["settings"]),
        previous_token_secret=d.get("previous_token_secret"),
        previous_secret_expires_at=d.get("previous_secret_expires_at"),
    )
