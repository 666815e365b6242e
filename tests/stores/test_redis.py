"""What only the Redis store does: its key layout, one expiry for a conversation's keys, and a
Redis Cluster that really spreads conversations over its nodes."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from chatkeep.models import Conversation, ConversationQuery, MessageStatus, Mode, NewMessage, Role
from chatkeep.stores import Store, open_store
from chatkeep.stores.fallback import FallbackStore
from tests import services
from tests.conftest import drop_keys, redis_cluster
from tests.redis_servers import RedisProcess


def conv(tenant: str, cid: str, ttl_ms: int | None = None) -> Conversation:
    return Conversation(tenant=tenant, id=cid, workspace="w", user="u", mode=Mode.EPHEMERAL, ttl_ms=ttl_ms)


async def test_a_conversations_keys_share_a_hash_tag_and_one_expiry() -> None:
    prefix = f"ck-test-{uuid.uuid4().hex[:8]}"
    store = open_store(f"{services.require_redis()}?prefix={prefix}")
    await store.connect()
    client = aioredis.Redis.from_url(services.REDIS_URL, decode_responses=True)
    try:
        await store.create_generated(conv("t1", "c1", ttl_ms=60_000))  # as for an id the server made
        await store.append_messages("t1", "c1", [NewMessage(id="m1", role=Role.USER, content="hi")])
        keys = sorted([k async for k in client.scan_iter(match=f"{prefix}:*")])
        own = [k for k in keys if "{t1:c1}" in k]
        assert own == [f"{prefix}:{{t1:c1}}:{suffix}" for suffix in ("c", "i", "m")]
        expiries = {await client.pexpiretime(k) for k in own}
        assert len(expiries) == 1 and next(iter(expiries)) > 0  # one clock for all three
        tenant_keys = [k for k in keys if "{t1}" in k]
        # the indexes name no conversation in their keys (the random prefix might spell "c1" itself)
        assert tenant_keys and all("c1" not in k.removeprefix(prefix) for k in tenant_keys)

        await asyncio.sleep(0.01)
        await store.touch_conversation("t1", "c1")
        assert len({await client.pexpiretime(k) for k in own}) == 1
        assert await client.pexpiretime(own[0]) > next(iter(expiries))  # slid forward together
    finally:
        await client.aclose()
        await store.close()
        await drop_keys(services.REDIS_URL, prefix)


async def test_the_cluster_spreads_conversations_over_its_nodes(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    url = redis_cluster(str(tmp_path_factory.mktemp("cluster")))
    store: Store = open_store(f"{url}?prefix=ck-spread")
    await store.connect()
    try:
        for i in range(30):
            await store.create_conversation(conv("t-spread", f"c{i}"))
            await store.append_messages(
                "t-spread", f"c{i}", [NewMessage(id="m", role=Role.USER, content="x")]
            )
        client = aioredis.RedisCluster.from_url(
            url.replace("redis+cluster://", "redis://"), decode_responses=True
        )
        try:
            await client.initialize()
            holders = set()
            for i in range(30):
                node = client.get_node_from_key(f"ck-spread:{{t-spread:c{i}}}:c")
                holders.add(node.name)
            assert len(holders) >= 2
            listed = await store.list_conversations(ConversationQuery(tenant="t-spread", limit=50))
            assert len(listed.items) == 30
        finally:
            await client.aclose()
    finally:
        await store.close()


async def test_a_stream_interrupted_during_an_outage_is_interrupted_in_redis_afterwards(
    tmp_path: Path,
) -> None:
    services.require_redis()
    server = RedisProcess(tmp_path / "redis")  # its port is chosen; the server is not started yet
    store = FallbackStore(open_store(server.url), probe_interval=0.1)
    await store.connect()
    try:
        assert store.degraded
        await store.create_generated(conv("t1", "c1", ttl_ms=60_000))  # as for an id the server made
        reply = NewMessage(id="r", role=Role.ASSISTANT, content="", status=MessageStatus.STREAMING)
        await store.append_messages("t1", "c1", [reply])
        await store.extend_message("t1", "c1", "r", "half a")
        await asyncio.sleep(0.3)
        stale = await store.interrupt_stale_streams(idle_ms=200)  # the writer went quiet
        assert [(c.id, m.id, m.status) for c, m in stale] == [("c1", "r", MessageStatus.INTERRUPTED)]
        assert store.pending == 4  # create, open, delta, interruption

        try:
            server.start()
        except RuntimeError as exc:
            services.unavailable(f"cannot start a redis-server: {exc}")
        async with asyncio.timeout(15):
            while store.degraded or store.pending:  # back, and the journal replayed in the background
                await asyncio.sleep(0.05)
        replayed = await store.primary.get_conversation("t1", "c1")
        (message,) = (await store.primary.read_messages(replayed)).messages
        assert (message.content, message.status) == ("half a", MessageStatus.INTERRUPTED)
        assert await store.primary.interrupt_stale_streams(idle_ms=0) == []  # nothing left streaming
    finally:
        await store.close()
        server.stop()
