"""What only the PostgreSQL store does: schemas, concurrent migrations, losing the server, and writes
that race for one conversation."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from chatkeep.errors import NotFound, StoreUnavailable
from chatkeep.models import (
    AppendOutcome,
    Conversation,
    ConversationPatch,
    MessageStatus,
    Mode,
    NewMessage,
    Role,
    Scope,
    Usage,
)
from chatkeep.stores import open_store
from chatkeep.stores.sql import SqlStore
from tests import services
from tests.conftest import drop_schema, open_backend


async def test_many_instances_migrating_at_once_create_the_schema_once() -> None:
    schema = f"ck_test_{uuid.uuid4().hex[:10]}"
    url = f"{services.require_postgres()}?schema={schema}"
    stores = [open_store(url) for _ in range(5)]
    try:
        await asyncio.gather(*(s.connect() for s in stores))
        await asyncio.gather(*(s.migrate() for s in stores))
        assert isinstance(stores[0], SqlStore)
        tables = await stores[0]._run(
            lambda conn: (
                conn.execute(
                    sa.text("SELECT table_name FROM information_schema.tables WHERE table_schema = :s"),
                    {"s": schema},
                )
                .scalars()
                .all()
            )
        )
        assert {
            "tenants",
            "conversations",
            "messages",
            "conversation_tags",
            "chatkeep_schema_version",
        } <= set(tables)
    finally:
        for store in stores:
            await store.close()
        await drop_schema(schema)


async def test_an_unreachable_server_is_store_unavailable_with_the_password_hidden() -> None:
    store = open_store("postgresql://chatkeep:s3cret@127.0.0.1:1/nothing")
    try:
        await store.connect()
        raise AssertionError("connect should have failed")
    except StoreUnavailable as exc:
        assert "s3cret" not in str(exc) and "***" in str(exc)
    finally:
        await store.close()


async def _instances(tmp_path: Path, count: int) -> AsyncIterator[tuple[SqlStore, ...]]:
    """`count` stores on one database, as `count` instances of the service would be."""
    async for first in open_backend("postgres", str(tmp_path)):
        assert isinstance(first, SqlStore)
        others = [open_store(first.url) for _ in range(count - 1)]
        for store in others:
            await store.connect()
        try:
            yield (first, *(store for store in others if isinstance(store, SqlStore)))
        finally:
            for store in others:
                await store.close()


def _conversation(cid: str) -> Conversation:
    return Conversation(tenant="t1", id=cid, workspace="w", user="u", mode=Mode.DURABLE, title="race")


async def test_racing_appends_deltas_and_a_finish_on_one_conversation_lose_nothing(tmp_path: Path) -> None:
    # Two instances on one database: the writes of each take turns, but those of the other race
    # them for the conversation row. A write finding the row changed writes nothing and runs again
    # the locked way. Nothing may be lost or counted twice either way.
    async for one, other in _instances(tmp_path, 2):
        await one.create_conversation(_conversation("c"))
        reply = NewMessage(id="r", role=Role.ASSISTANT, content="", status=MessageStatus.STREAMING)
        await one.append_messages("t1", "c", [reply])
        stores = (one, other)
        writes = [stores[i % 2].extend_message("t1", "c", "r", f"<{i}>") for i in range(20)]
        writes += [
            stores[i % 2].append_messages(
                "t1", "c", [NewMessage(id=f"m{i}", role=Role.USER, content=f"m{i}", usage=Usage(1, 2))]
            )
            for i in range(20)
        ]
        await asyncio.gather(*writes)
        done = await other.finish_message("t1", "c", "r", MessageStatus.COMPLETE, usage=Usage(100, 200))
        conversation = await one.get_conversation("t1", "c")
        page = await one.read_messages(conversation, limit=100)
        assert sorted(done.content.replace(">", "> ").split()) == sorted(f"<{i}>" for i in range(20))
        assert [m.seq for m in page.messages] == list(range(1, 22))
        assert sorted(m.id for m in page.messages[1:]) == sorted(f"m{i}" for i in range(20))
        assert (conversation.last_seq, conversation.message_count) == (21, 21)
        assert conversation.usage == Usage(20 + 100, 40 + 200)


async def test_a_write_after_the_server_ended_a_pooled_connection_succeeds(tmp_path: Path) -> None:
    async for store in open_backend("postgres", str(tmp_path)):
        assert isinstance(store, SqlStore)
        await store.create_conversation(_conversation("c"))
        await store.append_messages("t1", "c", [NewMessage(id="m1", role=Role.USER, content="one")])
        pids = [pid async for pid in _write_pool_pids(store)]
        engine = create_async_engine(
            services.POSTGRES_URL.replace("postgresql://", "postgresql+asyncpg://", 1)
        )
        async with engine.connect() as conn:
            for pid in pids:
                await conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        await engine.dispose()
        outcome = await store.append_messages("t1", "c", [NewMessage(id="m2", role=Role.USER, content="two")])
        assert [r.message.seq for r in outcome.results] == [2]
        outcome = await store.append_messages(
            "t1", "c", [NewMessage(id="m3", role=Role.USER, content="three")]
        )
        assert [r.message.seq for r in outcome.results] == [3]


async def _write_pool_pids(store: SqlStore) -> AsyncIterator[int]:
    """The server processes of the connections the store's hot writes use."""
    assert store._writes is not None and store._writes._pool is not None
    pool = store._writes._pool
    conn = await pool.acquire()
    try:
        yield await conn.fetchval("SELECT pg_backend_pid()")
    finally:
        pool.release(conn)


def _say(mid: str) -> list[NewMessage]:
    return [NewMessage(id=mid, role=Role.USER, content=mid, usage=Usage(1, 0))]


async def test_an_append_after_other_writes_plans_on_the_stored_row(tmp_path: Path) -> None:
    # An append plans on the row its store's last append left, and writes only if the row is still
    # that version. Every other write in between (a patch, another instance's append, a delete and
    # a new conversation of the same id) must show in what the next append answers and stores.
    async for one, other in _instances(tmp_path, 2):
        await one.create_conversation(_conversation("c"))
        await one.append_messages("t1", "c", _say("m1"))
        await one.update_conversation("t1", "c", ConversationPatch(title="renamed", tags=("x",)))
        after_patch = await one.append_messages("t1", "c", _say("m2"))
        await other.append_messages("t1", "c", _say("m3"))
        after_other = await one.append_messages("t1", "c", _say("m4"))
        with pytest.raises(NotFound):
            await one.append_messages("t1", "c", _say("m5"), scope=Scope(user="someone-else"))
        await other.delete_conversation("t1", "c")
        with pytest.raises(NotFound):
            await one.append_messages("t1", "c", _say("m6"))
        await other.create_conversation(_conversation("c"))
        renewed = await one.append_messages("t1", "c", _say("m7"))
        stored = await other.get_conversation("t1", "c")
        page = await other.read_messages(stored, limit=10)
        assert (after_patch.conversation.title, after_patch.conversation.tags) == ("renamed", ("x",))
        assert after_patch.conversation.version == 2
        assert [r.message.seq for r in after_patch.results] == [2]
        assert [r.message.seq for r in after_other.results] == [4]
        assert (after_other.conversation.message_count, after_other.conversation.usage) == (4, Usage(4, 0))
        assert [r.message.seq for r in renewed.results] == [1]
        assert (renewed.conversation.title, renewed.conversation.message_count) == ("race", 1)
        assert [(m.seq, m.id) for m in page.messages] == [(1, "m7")]
        assert (stored.last_seq, stored.message_count, stored.usage) == (1, 1, Usage(1, 0))


async def test_appends_of_three_instances_racing_with_patches_stay_gapless(tmp_path: Path) -> None:
    async for stores in _instances(tmp_path, 3):
        one = stores[0]
        await one.create_conversation(_conversation("c"))
        order = list(range(90))
        random.shuffle(order)
        writes = [stores[i % 3].append_messages("t1", "c", _say(f"m{i}")) for i in order]
        writes += [
            stores[i % 3].update_conversation("t1", "c", ConversationPatch(title=f"t{i}")) for i in range(9)
        ]
        random.shuffle(writes)
        outcomes = await asyncio.gather(*writes)
        conversation = await one.get_conversation("t1", "c")
        page = await one.read_messages(conversation, limit=200)
        appended = [o for o in outcomes if isinstance(o, AppendOutcome)]
        assert sorted(r.message.seq for o in appended for r in o.results) == list(range(1, 91))
        assert [m.seq for m in page.messages] == list(range(1, 91))
        assert sorted(m.id for m in page.messages) == sorted(f"m{i}" for i in range(90))
        assert (conversation.last_seq, conversation.message_count, conversation.usage) == (
            90,
            90,
            Usage(90, 0),
        )
        assert conversation.version == 1 + 9
