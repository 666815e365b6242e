"""How the Redis store commits a write: on a standalone server one script call commits it and lists
its conversation in the tenant's indexes; on a Cluster (where those keys are in other slots) the
indexes end up the same; a server that lost its scripts gets them again."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis

from chatkeep.models import Conversation, MessageStatus, Mode, NewMessage, Role, now_ms
from chatkeep.stores import Store, open_store
from tests import services
from tests.conftest import drop_keys, redis_cluster
from tests.redis_servers import RedisProcess

TTL_MS = 600_000


def conv(tenant: str, cid: str) -> Conversation:
    return Conversation(tenant=tenant, id=cid, workspace="w", user="u", mode=Mode.EPHEMERAL, ttl_ms=TTL_MS)


def say(mid: str, text: str = "hello") -> list[NewMessage]:
    return [NewMessage(id=mid, role=Role.USER, content=text)]


# What COMMIT and INDEX_PUT call inside their scripts: Redis counts those calls too.
SCRIPTED = {"hmget", "hexists", "hset", "hincrby", "pexpireat", "persist", "zadd", "zrem", "hdel", "incr"}


async def test_an_append_on_a_standalone_server_is_one_script_call(
    private_store: Store, private_client: aioredis.Redis
) -> None:
    store, client = private_store, private_client
    await store.create_conversation(conv("t1", "c1"))
    await store.append_messages("t1", "c1", say("m0"))
    await client.config_resetstat()
    for k in range(1, 4):
        await store.append_messages("t1", "c1", say(f"m{k}"))
    stats = await client.info("commandstats")
    assert stats["cmdstat_evalsha"]["calls"] == 3
    # and no other call (INFO and CONFIG are this test's)
    called = {name.removeprefix("cmdstat_").partition("|")[0] for name in stats}
    assert called - {"info", "config", "evalsha"} <= SCRIPTED
    conversation = await store.get_conversation("t1", "c1")
    assert (conversation.last_seq, conversation.message_count) == (4, 4)


@pytest.mark.parametrize("backend", ["redis", "redis_cluster"])
async def test_a_write_leaves_the_conversation_listed_as_its_record_says(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    prefix = f"ck-test-{uuid.uuid4().hex[:10]}"
    if backend == "redis":
        url = f"{services.require_redis()}?prefix={prefix}"
        client: aioredis.Redis | aioredis.RedisCluster = aioredis.Redis.from_url(
            services.REDIS_URL, decode_responses=True
        )
    else:
        cluster = redis_cluster(str(tmp_path_factory.mktemp("cluster")))
        url = f"{cluster}?prefix={prefix}"
        client = aioredis.RedisCluster.from_url(
            cluster.replace("redis+cluster://", "redis://"), decode_responses=True
        )
    store: Store = open_store(url)
    await store.connect()
    try:
        await store.create_conversation(conv("t1", "older"))
        await store.create_conversation(conv("t1", "c1"))
        outcome = await store.append_messages("t1", "c1", say("m1"))
        await store.append_messages("t1", "older", say("m1"))
        await asyncio.sleep(0.003)  # so that c1's last activity is later than older's
        last = (await store.append_messages("t1", "c1", say("m2"))).conversation
        assert last.last_activity_at > outcome.conversation.last_activity_at and last.expires_at is not None

        def key(name: str) -> str:
            return f"{prefix}:{{t1}}:{name}"

        for index in ("all", "u:u", "uw:u:w"):
            assert await client.zscore(key(index), "c1") == last.last_activity_at
            listed = await client.zrevrange(key(index), 0, -1)
            assert listed == ["c1", "older"]
        assert await client.zscore(key("exp"), "c1") == last.expires_at
        assert await client.hget(key("own"), "c1") == "u\x1fw\x1fephemeral"
        assert await client.get(key("rev")) == "2"  # two conversations joined the list, once each
    finally:
        await client.aclose()
        await store.close()
        if backend == "redis":
            await drop_keys(services.REDIS_URL, prefix)


async def test_a_server_that_lost_its_scripts_is_given_them_again(
    private_store: Store, private_client: aioredis.Redis
) -> None:
    store, client = private_store, private_client
    await store.create_conversation(conv("t1", "c1"))
    await store.append_messages("t1", "c1", say("m1"))
    await client.script_flush()
    outcome = await store.append_messages("t1", "c1", say("m2"))
    assert [r.message.seq for r in outcome.results] == [2]
    page = await store.read_messages(outcome.conversation)
    assert [(m.id, m.seq) for m in page.messages] == [("m1", 1), ("m2", 2)]


async def test_a_streaming_reply_is_noted_by_the_write_itself(
    private_redis: RedisProcess, private_client: aioredis.Redis
) -> None:
    start = now_ms()  # Redis expires the keys by this clock too
    now = [start]
    store = open_store(private_redis.url, clock=lambda: now[0])
    client = private_client
    await store.connect()
    try:
        await store.create_conversation(conv("t1", "c1"))
        await store.append_messages("t1", "c1", say("m0"))  # the server learns the scripts
        await client.config_resetstat()
        reply = NewMessage(id="r", role=Role.ASSISTANT, content="", status=MessageStatus.STREAMING)
        now[0] += 10
        await store.append_messages("t1", "c1", [reply])
        assert await client.zrange("ck:streaming", 0, -1, withscores=True) == [("t1\x1fc1\x1fr", start + 10)]
        now[0] += 10
        await store.extend_message("t1", "c1", "r", "half")
        assert await client.zrange("ck:streaming", 0, -1, withscores=True) == [("t1\x1fc1\x1fr", start + 20)]
        now[0] += 10
        await store.finish_message("t1", "c1", "r", MessageStatus.COMPLETE)
        assert await client.zrange("ck:streaming", 0, -1) == []
        stats = await client.info("commandstats")
        # the append one call; the delta and the end each a read and a commit
        assert stats["cmdstat_evalsha"]["calls"] == 5
        called = {name.removeprefix("cmdstat_").partition("|")[0] for name in stats}
        assert called - {"info", "config", "evalsha", "zrange"} <= SCRIPTED | READ
    finally:
        await store.close()


# What READ calls inside its script.
READ = {"hgetall", "hget"}
