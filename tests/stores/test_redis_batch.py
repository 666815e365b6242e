"""Script calls sent together on a standalone Redis (stores/redis/batch.py): concurrent writes share
one pipeline, and each caller still gets its own answer or error, as if its call had been sent alone."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
import redis.exceptions as rexc

from chatkeep.errors import StoreUnavailable
from chatkeep.models import Conversation, Mode, NewMessage, Role
from chatkeep.stores import Store
from chatkeep.stores.redis.batch import ScriptBatches
from tests.redis_servers import RedisProcess

# Answers its argument, or fails when the argument is 'fail'.
ECHO = "if ARGV[1] == 'fail' then return redis.error_reply('failed on purpose') end return ARGV[1]"


async def test_each_call_of_a_batch_gets_its_own_answer_or_error(private_client: aioredis.Redis) -> None:
    client = private_client
    batches = ScriptBatches(client)
    echo = client.register_script(ECHO)
    words = [f"w{k}" for k in range(20)]
    words[7] = "fail"
    answers = await asyncio.gather(
        *(batches.call(echo, [], [word]) for word in words), return_exceptions=True
    )
    assert [a for k, a in enumerate(answers) if k != 7] == [w for k, w in enumerate(words) if k != 7]
    assert isinstance(answers[7], rexc.ResponseError) and "failed on purpose" in str(answers[7])
    assert await batches.call(echo, [], ["alone"]) == "alone"


async def test_a_batch_reloads_the_scripts_the_server_lost(private_client: aioredis.Redis) -> None:
    client = private_client
    batches = ScriptBatches(client)
    echo = client.register_script(ECHO)
    assert await batches.call(echo, [], ["loaded"]) == "loaded"
    await client.script_flush()
    words = [f"w{k}" for k in range(10)]
    assert await asyncio.gather(*(batches.call(echo, [], [w]) for w in words)) == words


async def test_when_the_server_is_gone_every_call_of_a_batch_fails(
    private_redis: RedisProcess, private_client: aioredis.Redis
) -> None:
    client = private_client
    batches = ScriptBatches(client)
    echo = client.register_script(ECHO)
    assert await batches.call(echo, [], ["up"]) == "up"
    private_redis.kill()
    answers = await asyncio.gather(
        *(batches.call(echo, [], [f"w{k}"]) for k in range(10)), return_exceptions=True
    )
    assert all(isinstance(a, (rexc.ConnectionError, OSError)) for a in answers), answers


async def test_concurrent_appends_share_one_connection(
    private_store: Store, private_client: aioredis.Redis
) -> None:
    store, client = private_store, private_client
    ids = [f"c{k}" for k in range(50)]
    for cid in ids:
        await store.create_conversation(Conversation("t1", cid, "w", "u", Mode.EPHEMERAL, ttl_ms=60_000))
    outcomes = await asyncio.gather(
        *(store.append_messages("t1", cid, [NewMessage(id="m1", role=Role.USER, content=cid)]) for cid in ids)
    )
    assert [(o.conversation.id, o.results[0].message.seq) for o in outcomes] == [(cid, 1) for cid in ids]
    connections = await client.client_list()
    assert len(connections) == 2  # the store's one, and this test's


async def test_a_store_whose_server_is_gone_answers_unavailable(
    private_redis: RedisProcess, private_store: Store
) -> None:
    store = private_store
    for cid in ("c1", "c2"):
        await store.create_conversation(Conversation("t1", cid, "w", "u", Mode.EPHEMERAL, ttl_ms=60_000))
    private_redis.kill()
    answers = await asyncio.gather(
        *(
            store.append_messages("t1", cid, [NewMessage(id="m1", role=Role.USER, content="x")])
            for cid in ("c1", "c2")
        ),
        return_exceptions=True,
    )
    assert [type(a) for a in answers] == [StoreUnavailable, StoreUnavailable]


async def test_a_call_given_up_before_it_is_sent_is_not_sent(private_client: aioredis.Redis) -> None:
    client = private_client
    batches = ScriptBatches(client)
    incr = client.register_script("return redis.call('INCR', KEYS[1])")
    calls = [asyncio.ensure_future(batches.call(incr, [f"n{k}"], [])) for k in range(5)]
    await asyncio.sleep(0)  # each call is waiting for the send
    calls[2].cancel()
    answers = await asyncio.gather(*calls, return_exceptions=True)
    assert [a for k, a in enumerate(answers) if k != 2] == [1, 1, 1, 1]
    assert isinstance(answers[2], asyncio.CancelledError)
    assert await client.get("n2") is None  # never sent
    assert await batches.call(incr, ["n2"], []) == 1  # and the batches go on
