"""What the fallback accepts and refuses while Redis is down, one rule at a time, on the store itself
(a private redis-server, stopped and started)."""

from __future__ import annotations

import asyncio

import pytest

from chatkeep.errors import NotFound, StoreUnavailable
from chatkeep.models import Conversation, Mode, NewMessage, Role, Scope
from chatkeep.stores import open_store
from chatkeep.stores.fallback import FallbackStore
from tests.redis_servers import RedisProcess

OWNER = Scope(user="owner")
OTHER = Scope(user="other")


def conversation(cid: str) -> Conversation:
    return Conversation(tenant="t", id=cid, workspace="w", user="owner", mode=Mode.EPHEMERAL)


def message(mid: str) -> NewMessage:
    return NewMessage(id=mid, role=Role.USER, content=mid)


async def test_the_rules_of_degraded_mode(redis_server: RedisProcess) -> None:
    store = FallbackStore(open_store(redis_server.url), probe_interval=0.1)
    await store.connect()
    try:
        await store.create_conversation(conversation("known"))
        await store.create_conversation(conversation("cut"))
        for i in range(1, 41):
            await store.append_messages("t", "known", [message(f"m{i}")], scope=OWNER)
        redis_server.stop()

        # a write Redis may or may not have run: that conversation waits for Redis
        with pytest.raises(StoreUnavailable):
            await store.append_messages("t", "cut", [message("c1")], scope=OWNER)
        assert store.degraded
        with pytest.raises(StoreUnavailable, match="cut off"):
            await store.append_messages("t", "cut", [message("c1")], scope=OWNER)

        # a conversation known exactly continues its seqs; a recent id is answered as stored
        outcome = await store.append_messages("t", "known", [message("m41")], scope=OWNER)
        assert [(r.message.seq, r.created) for r in outcome.results] == [(41, True)]
        again = await store.append_messages("t", "known", [message("m40"), message("m41")], scope=OWNER)
        assert [(r.message.seq, r.created) for r in again.results] == [(40, False), (41, False)]
        assert not outcome.provisional  # one instance

        # the same rules as ever: another user reaches nothing
        for attempt in (
            store.append_messages("t", "known", [message("x")], scope=OTHER),
            store.delete_conversation("t", "known", OTHER),
            store.get_conversation("t", "known", OTHER),
        ):
            with pytest.raises(NotFound):
                await attempt

        # what cannot be checked is refused
        with pytest.raises(StoreUnavailable, match="not known"):
            await store.append_messages("t", "never-seen", [message("x")], scope=OWNER)
        with pytest.raises(StoreUnavailable, match="chosen by the client"):
            await store.create_conversation(conversation("new-id"))
        made = await store.create_generated(conversation("a3f1c0de-generated"))
        await store.append_messages("t", made.id, [message("g1")], scope=OWNER)

        # reads: the record, and the messages written during the outage
        known = await store.get_conversation("t", "known", OWNER)
        assert known.last_seq == 41
        with pytest.raises(StoreUnavailable):
            await store.read_messages(known)
        page = await store.read_messages(known, after=40)
        assert [m.id for m in page.messages] == ["m41"]
        assert store.pending == 3  # m41, the create, g1

        redis_server.start()
        async with asyncio.timeout(15):
            while store.degraded or store.pending:
                await asyncio.sleep(0.05)
        after = await store.append_messages("t", "cut", [message("c1")], scope=OWNER)
        assert after.results[0].message.seq == 1  # stored once, whether or not the cut-off write ran
        stored = await store.read_messages(await store.get_conversation("t", "known"), after=38)
        assert [(m.id, m.seq) for m in stored.messages] == [("m39", 39), ("m40", 40), ("m41", 41)]
        assert (await store.get_conversation("t", made.id)).last_seq == 1
        assert store.replay_stats().failures == 0 and store.replay_stats().seq_changes == 0
    finally:
        await store.close()
