"""What every part of the Redis store shares: the client and its scripts, the keys, and the tenant
indexes a conversation write leaves behind (see `store.py` for the key layout). The Redis store keeps
conversations only: tenants live in the durable store."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions as rexc
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from chatkeep.domain import errors
from chatkeep.errors import (
    ChatkeepError,
    StoreUnavailable,
)
from chatkeep.models import (
    Conversation,
    Scope,
    now_ms,
)
from chatkeep.stores.base import Store
from chatkeep.stores.redis import codec, scripts, tenant_scripts
from chatkeep.stores.redis.batch import ScriptBatches, run_script
from chatkeep.stores.redis.codec import SEP
from chatkeep.stores.url import StoreURL

UNAVAILABLE = (rexc.ConnectionError, rexc.TimeoutError, rexc.BusyLoadingError, rexc.ClusterError, OSError)
Client = aioredis.Redis | RedisCluster


class RedisCore(Store):
    """URLs: `redis://host:6379/0`, `rediss://...` (TLS), `redis+cluster://host:7000` (a Redis
    Cluster, found from that node). Options: `prefix` (key prefix, default `ck`)."""

    def __init__(
        self, url: StoreURL | str, *, client: Client | None = None, clock: Callable[[], int] = now_ms
    ) -> None:
        self.url = url if isinstance(url, StoreURL) else StoreURL.parse(url)
        self.prefix = self.url.options.get("prefix", "ck")
        self.cluster = self.url.scheme == "redis+cluster"
        # Whether one script may take keys of several hash slots (not on a Cluster): set on connect.
        self._standalone = False
        # On a standalone server, script calls made meanwhile are sent together (batch.py).
        self._batches: ScriptBatches | None = None
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
        if isinstance(self._client, aioredis.Redis):  # not a Cluster
            self._standalone, self._batches = True, ScriptBatches(self._client)
        for module in (scripts, tenant_scripts):
            for name, source in vars(module).items():
                if name.isupper() and not name.startswith("_") and isinstance(source, str):
                    self._scripts[name] = self._client.register_script(source)
        await self.ping()

    async def close(self) -> None:
        self._batches = None
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
        # Every write's round trip: one EVALSHA (sent with those of concurrent writes on a standalone
        # server), without the registered script object or a context manager, which cost a share.
        try:
            if self._batches is not None:
                return await self._batches.call(self._scripts[name], keys, args)
            return await run_script(self._redis, self._scripts[name], keys, args)
        except UNAVAILABLE as exc:
            raise StoreUnavailable(f"{self.url.redacted} is unavailable ({type(exc).__name__})") from exc

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
            k(tenant, "rev"),
        ]

    def _list_keys(self, tenant: str, index: str = "all") -> list[str]:
        """The KEYS of a tenant script that reads one list (`index`) rather than an owner's lists."""
        keys = self._index_keys(tenant, "", "")
        keys[1:4] = [self._tenant_key(tenant, index)] * 3
        return keys

    # -- what a write leaves behind in the tenant's indexes --------------------------------------

    async def _listed(self, conversation: Conversation) -> None:
        """Bring the tenant's indexes in line with this record."""
        c = conversation
        await self._script("INDEX_PUT", self._index_keys(c.tenant, c.user, c.workspace), self._listing(c))
        await self._note_expiring(c)

    @staticmethod
    def _listing(c: Conversation) -> list[Any]:
        """The ARGV of INDEX_PUT for this record."""
        return [c.id, codec.owner_of(c), codec.list_score(c), codec.opt(c.expires_at)]

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
                return errors.conversation_expired(cid)
        return errors.conversation_not_found(cid)
