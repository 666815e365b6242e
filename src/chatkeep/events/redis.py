"""RedisEventBus: events shared by every instance through Redis pub/sub.

One channel per tenant (`{prefix}:events:{tenant}`); an instance subscribes to the tenants that
have followers on it. Publishing goes through an ordered queue to one publisher task, which sends
whatever has queued meanwhile in one pipeline (one round trip for many events), so the events of one
instance keep their order. `publish` returns once Redis has taken the event, so a write is answered
only after every instance can see its event; while Redis is unreachable it returns after
PUBLISH_WAIT instead, and the event goes out when Redis is back. One reader task owns the
pub/sub connection: subscriptions are asked of it and confirmed by it before `subscribe` returns.
When that connection is lost, it reconnects and tells the local subscribers that events may have
been missed (they resume from the store).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson
import redis.asyncio as aioredis
import redis.exceptions as rexc

from chatkeep import tasks
from chatkeep.errors import StoreUnavailable
from chatkeep.events.base import EventBus
from chatkeep.events.local import LocalEventBus
from chatkeep.models import Event, EventType
from chatkeep.stores.url import StoreURL

log = logging.getLogger("chatkeep.events")
OUTGOING = 10_000
RECONNECT_DELAY = 0.5
CONFIRM_TIMEOUT = 10.0
PUBLISH_WAIT = 1.0  # how long a write waits for Redis to take its event before it is answered anyway


class RedisEventBus(EventBus):
    def __init__(self, url: StoreURL | str) -> None:
        self.url = url if isinstance(url, StoreURL) else StoreURL.parse(url)
        self.prefix = self.url.options.get("prefix", "ck")
        self._local = LocalEventBus()
        self._client: aioredis.Redis | None = None
        self._subscribers: dict[str, int] = {}
        self._requests: asyncio.Queue[tuple[str, str, asyncio.Future[None]]] = asyncio.Queue()
        self._outgoing: asyncio.Queue[tuple[Event, asyncio.Future[None]]] = asyncio.Queue(OUTGOING)
        self._tasks: list[asyncio.Task[None]] = []

    def _channel(self, tenant: str) -> str:
        return f"{self.prefix}:events:{tenant}"

    async def connect(self) -> None:
        self._client = aioredis.Redis.from_url(
            self.url.without_options(), socket_connect_timeout=2, socket_keepalive=True
        )
        try:
            await self._client.ping()
        except (rexc.ConnectionError, rexc.TimeoutError, OSError) as exc:
            raise StoreUnavailable(f"{self.url.redacted} is unavailable for events") from exc
        self._tasks = [
            asyncio.create_task(self._read(), name="chatkeep-events-reader"),
            asyncio.create_task(self._publish_loop(), name="chatkeep-events-publisher"),
        ]

    async def close(self) -> None:
        for task in self._tasks:
            await tasks.stop(task)
        self._tasks = []
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        await self._local.close()

    async def publish(self, event: Event) -> None:
        sent: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        try:
            self._outgoing.put_nowait((event, sent))
        except asyncio.QueueFull:  # Redis has been unreachable for a while: followers resume later
            log.warning("event queue full; dropping %s for %s", event.type.value, event.conversation_id)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(sent), PUBLISH_WAIT)

    @property
    def _redis(self) -> aioredis.Redis:
        if self._client is None:
            raise StoreUnavailable(f"{self.url.redacted} is not connected")
        return self._client

    async def _publish_loop(self) -> None:
        while not tasks.stopping():
            batch = [await self._outgoing.get()]
            while not self._outgoing.empty() and len(batch) < 500:
                batch.append(self._outgoing.get_nowait())
            while True:
                try:
                    async with self._redis.pipeline(transaction=False) as pipe:
                        for event, _ in batch:
                            pipe.publish(self._channel(event.tenant), _encode(event))
                        await pipe.execute()
                    break
                except (rexc.ConnectionError, rexc.TimeoutError, OSError):
                    await asyncio.sleep(RECONNECT_DELAY)
            for _, sent in batch:
                if not sent.done():
                    sent.set_result(None)

    @contextlib.asynccontextmanager
    async def subscribe(self, tenant: str) -> AsyncIterator[AsyncIterator[Event]]:
        async with self._local.subscribe(tenant) as stream:
            first = self._subscribers.get(tenant, 0) == 0
            self._subscribers[tenant] = self._subscribers.get(tenant, 0) + 1
            try:
                if first:
                    await self._ask("subscribe", tenant)
                yield stream
            finally:
                self._subscribers[tenant] -= 1
                if self._subscribers[tenant] == 0:
                    del self._subscribers[tenant]
                    # Not awaited: leaving must not wait for Redis (it may be down).
                    self._requests.put_nowait(
                        ("unsubscribe", tenant, asyncio.get_running_loop().create_future())
                    )

    async def _ask(self, verb: str, tenant: str) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._requests.put((verb, tenant, done))
        try:
            await asyncio.wait_for(done, CONFIRM_TIMEOUT)
        except TimeoutError:
            raise StoreUnavailable(f"{self.url.redacted} did not confirm the subscription") from None

    async def _read(self) -> None:
        while not tasks.stopping():
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                channels = [self._channel(t) for t in self._subscribers]
                if channels:
                    await pubsub.subscribe(*channels)
                await self._serve(pubsub)
            except Exception as exc:  # whatever broke, the reader must live on: reconnect
                if isinstance(exc, (rexc.ConnectionError, rexc.TimeoutError, OSError)):
                    log.warning("event bus connection lost (%s); reconnecting", type(exc).__name__)
                else:
                    log.exception("event bus reader failed; reconnecting")
                for tenant in list(self._subscribers):
                    self._local.interrupt(tenant)  # events may have been missed meanwhile
                await asyncio.sleep(RECONNECT_DELAY)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def _serve(self, pubsub: Any) -> None:
        while True:
            if not pubsub.subscribed:  # nothing to read until something is subscribed
                await self._perform(pubsub, await self._requests.get())
                continue
            while not self._requests.empty():
                await self._perform(pubsub, self._requests.get_nowait())
            message = await pubsub.get_message(timeout=0.05)
            if message is not None and message.get("type") == "message":
                self._local.deliver(_decode(message["data"]))

    async def _perform(self, pubsub: Any, request: tuple[str, str, asyncio.Future[None]]) -> None:
        verb, tenant, done = request
        try:
            await getattr(pubsub, verb)(self._channel(tenant))
        except Exception as exc:
            if not done.done():  # the asker may have given up (cancelled) meanwhile
                done.set_exception(
                    StoreUnavailable(f"{self.url.redacted}: cannot {verb} ({type(exc).__name__})")
                )
            raise
        if not done.done():
            done.set_result(None)


def _encode(event: Event) -> bytes:
    return orjson.dumps(
        {
            "type": event.type.value,
            "tenant": event.tenant,
            "workspace": event.workspace,
            "user": event.user,
            "conversation_id": event.conversation_id,
            "seq": event.seq,
            "version": event.version,
            "data": event.data,
        }
    )


def _decode(raw: bytes | str) -> Event:
    d = orjson.loads(raw)
    return Event(
        type=EventType(d["type"]),
        tenant=d["tenant"],
        workspace=d["workspace"],
        user=d["user"],
        conversation_id=d["conversation_id"],
        seq=d["seq"],
        version=d["version"],
        data=d["data"],
    )
