"""PostgreSQL appends to different conversations written together (`stores/sql/append_groups.py`):
many writers, several instances, a refused part, a row that moved, callers that give up and a
connection lost while a group is in flight. Groups are made to form by holding conversation rows
locked from another connection, so that both senders wait and the appends behind them queue up."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest

from chatkeep.models import AppendOutcome, Conversation, ConversationPatch, Mode, NewMessage, Role, Usage
from chatkeep.stores.sql import SqlStore
from chatkeep.stores.sql.append_groups import SENDERS, AppendGroups
from tests import services
from tests.stores.test_postgres import _instances

T = "t1"


def _conversation(cid: str) -> Conversation:
    return Conversation(tenant=T, id=cid, workspace="w", user="u", mode=Mode.DURABLE, title="group")


def _say(mid: str, usage: Usage | None = None) -> list[NewMessage]:
    return [NewMessage(id=mid, role=Role.USER, content=f"say {mid}", usage=usage or Usage(1, 0))]


def _groups(store: SqlStore) -> AppendGroups:
    assert store._writes is not None
    return store._writes._groups


async def _stored(store: SqlStore, cid: str) -> list[tuple[int, str]]:
    conversation = await store.get_conversation(T, cid)
    page = await store.read_messages(conversation, limit=500)
    return [(m.seq, m.id) for m in page.messages]


async def _until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    for _ in range(1000):
        if await condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"timed out waiting until {what}")


class RowLocks:
    """Conversation rows held locked by a transaction on a connection of the test's own."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store
        self._conn: asyncpg.Connection | None = None
        self._txn: object = None
        self.pid = 0

    async def hold(self, *cids: str) -> None:
        url = services.require_postgres()
        self._conn = await asyncpg.connect(url, server_settings={"search_path": self._store.schema or ""})
        self.pid = await self._conn.fetchval("SELECT pg_backend_pid()")
        self._txn = self._conn.transaction()
        await self._txn.start()  # type: ignore[attr-defined]
        await self._conn.execute("SELECT 1 FROM conversations WHERE id = ANY($1) FOR UPDATE", list(cids))

    async def blocked(self) -> list[int]:
        """The server processes waiting for these locks. (Asked on another connection: within a
        transaction, pg_stat_activity keeps showing what it showed first.)"""
        watch = await asyncpg.connect(services.require_postgres())
        try:
            rows = await watch.fetch(
                "SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))", self.pid
            )
        finally:
            await watch.close()
        return [row["pid"] for row in rows]

    async def release(self) -> None:
        assert self._conn is not None
        await self._txn.commit()  # type: ignore[attr-defined]
        await self._conn.close()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    async for (one,) in _instances(tmp_path, 1):
        yield one


async def _senders_busy(
    store: SqlStore, cids: list[str]
) -> tuple[RowLocks, list[asyncio.Task[AppendOutcome]]]:
    """Both senders waiting on a locked row: what is appended next queues up."""
    assert len(cids) == SENDERS
    locks = RowLocks(store)
    await locks.hold(*cids)
    busy = [asyncio.create_task(store.append_messages(T, cid, _say(f"{cid}-1"))) for cid in cids]
    await _until(_count_blocked(locks, SENDERS), "both senders wait")
    return locks, busy


def _count_blocked(locks: RowLocks, n: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return len(await locks.blocked()) == n

    return check


async def _queued(store: SqlStore, n: int) -> None:
    async def check() -> bool:
        return len(_groups(store)._waiting) == n

    await _until(check, f"{n} appends wait")


async def test_many_writers_on_many_conversations_are_gapless_and_share_commits(store: SqlStore) -> None:
    cids = [f"c{i:02d}" for i in range(30)]
    for cid in cids:
        await store.create_conversation(_conversation(cid))
    writes = []
    for cid in cids:
        for n in range(12):
            batch = _say(f"{cid}-{n}") if n % 4 else [*_say(f"{cid}-{n}a"), *_say(f"{cid}-{n}b")]
            writes.append((cid, batch))
    random.shuffle(writes)
    # Every fifth write is sent twice at once: a retry racing its original.
    tasks = [store.append_messages(T, cid, batch) for cid, batch in writes]
    tasks += [store.append_messages(T, cid, batch) for cid, batch in writes[::5]]
    outcomes = await asyncio.gather(*tasks)
    for cid in cids:
        stored = await _stored(store, cid)
        ids = [mid for cid_, batch in writes if cid_ == cid for mid in (m.id for m in batch)]
        assert [seq for seq, _ in stored] == list(range(1, len(ids) + 1))
        assert sorted(mid for _, mid in stored) == sorted(ids)
        conversation = await store.get_conversation(T, cid)
        assert (conversation.last_seq, conversation.message_count) == (len(ids), len(ids))
        assert conversation.usage == Usage(len(ids), 0)
    created = [r for o in outcomes for r in o.results if r.created]
    assert len(created) == sum(len(batch) for _, batch in writes)
    # Each message is answered with the seq it is stored at, whether created or already stored.
    by_id = {(o.conversation.id, r.message.id): r.message.seq for o in outcomes for r in o.results}
    for cid in cids:
        assert all(by_id[(cid, mid)] == seq for seq, mid in await _stored(store, cid))
    # Written together: fewer transactions than appends (one statement's messages share its xmin).
    transactions = await store._run(
        lambda conn: conn.exec_driver_sql("SELECT count(DISTINCT xmin::text) FROM messages").scalar()
    )
    assert transactions < len(writes)


async def test_three_instances_with_many_writers_and_patches_lose_nothing(tmp_path: Path) -> None:
    async for stores in _instances(tmp_path, 3):
        cids = [f"c{i}" for i in range(8)]
        for cid in cids:
            await stores[0].create_conversation(_conversation(cid))
        writes = [
            stores[random.randrange(3)].append_messages(T, cid, _say(f"{cid}-{n}"))
            for cid in cids
            for n in range(15)
        ]
        patches = [(cid, n) for cid in cids for n in range(3)]
        writes += [
            stores[n].update_conversation(T, cid, ConversationPatch(title=f"{cid}{n}")) for cid, n in patches
        ]
        random.shuffle(writes)
        await asyncio.gather(*writes)
        for cid in cids:
            stored = await _stored(stores[1], cid)
            assert [seq for seq, _ in stored] == list(range(1, 16))
            assert sorted(mid for _, mid in stored) == sorted(f"{cid}-{n}" for n in range(15))
            conversation = await stores[2].get_conversation(T, cid)
            assert (conversation.last_seq, conversation.message_count, conversation.version) == (15, 15, 4)


async def test_a_refused_part_refuses_its_group_and_only_that_append_goes_the_general_way(
    store: SqlStore,
) -> None:
    for cid in ("a1", "a2", "b", "c"):
        await store.create_conversation(_conversation(cid))
    await store.append_messages(T, "b", _say("b-1"))
    await store.append_messages(T, "c", _say("c-1"))
    locks, busy = await _senders_busy(store, ["a1", "a2"])
    b = asyncio.create_task(store.append_messages(T, "b", _say("b-2")))
    # c-1 is stored: planned on the remembered row as new, its insert is refused, and so its group.
    c = asyncio.create_task(store.append_messages(T, "c", _say("c-1")))
    await _queued(store, 2)
    await locks.release()
    await asyncio.gather(*busy)
    b_outcome, c_outcome = await b, await c
    assert [(r.message.seq, r.created) for r in b_outcome.results] == [(2, True)]
    assert [(r.message.seq, r.created) for r in c_outcome.results] == [(1, False)]
    assert await _stored(store, "b") == [(1, "b-1"), (2, "b-2")]
    assert await _stored(store, "c") == [(1, "c-1")]
    assert (await store.get_conversation(T, "c")).message_count == 1


@pytest.mark.parametrize("meanwhile", ["patch", "append"])
async def test_a_row_that_moved_while_its_append_waited_is_read_again(tmp_path: Path, meanwhile: str) -> None:
    # A patch leaves the messages as they were: only the row's version tells the group that x moved.
    # An append takes the seq x's append was planned with: the group is refused and x sent alone.
    async for one, other in _instances(tmp_path, 2):
        for cid in ("a1", "a2", "b", "x"):
            await one.create_conversation(_conversation(cid))
            await one.append_messages(T, cid, _say(f"{cid}-0"))
        locks, busy = await _senders_busy(one, ["a1", "a2"])
        b = asyncio.create_task(one.append_messages(T, "b", _say("b-1")))
        x = asyncio.create_task(one.append_messages(T, "x", _say("x-1")))
        await _queued(one, 2)
        if meanwhile == "patch":
            await other.update_conversation(T, "x", ConversationPatch(title="moved"))
        else:
            await other.append_messages(T, "x", _say("x-other", Usage(5, 5)))
        await locks.release()
        await asyncio.gather(*busy)
        b_outcome, x_outcome = await b, await x
        assert [r.message.seq for r in b_outcome.results] == [2]
        assert b_outcome.conversation.title == "group"
        stored = await other.get_conversation(T, "x")
        assert x_outcome.conversation == stored
        if meanwhile == "patch":
            assert [r.message.seq for r in x_outcome.results] == [2]
            assert await _stored(other, "x") == [(1, "x-0"), (2, "x-1")]
            assert (stored.title, stored.version, stored.message_count, stored.usage) == (
                "moved",
                2,
                2,
                Usage(2, 0),
            )
        else:
            assert [r.message.seq for r in x_outcome.results] == [3]
            assert await _stored(other, "x") == [(1, "x-0"), (2, "x-other"), (3, "x-1")]
            assert (stored.title, stored.version, stored.message_count, stored.usage) == (
                "group",
                1,
                3,
                Usage(7, 5),
            )


class HeldGroup:
    """Appends of `-1` messages to conversations that hold a `-0`, queued behind both senders, then
    sent as one group, which waits for conversation b's row, held locked."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self.row_b = RowLocks(store)
        self.appends: dict[str, asyncio.Task[AppendOutcome]] = {}

    async def queue(self, cids: list[str]) -> None:
        for cid in ["a1", "a2", *cids]:
            await self.store.create_conversation(_conversation(cid))
            await self.store.append_messages(T, cid, _say(f"{cid}-0"))
        self._senders, self._busy = await _senders_busy(self.store, ["a1", "a2"])
        await self.row_b.hold("b")
        for cid in cids:
            self.appends[cid] = asyncio.create_task(self.store.append_messages(T, cid, _say(f"{cid}-1")))
        await _queued(self.store, len(cids))

    async def send(self) -> None:
        await self._senders.release()
        await asyncio.gather(*self._busy)
        await _until(_count_blocked(self.row_b, 1), "the group waits for b's row")


async def test_callers_that_give_up_before_or_while_their_group_is_written(store: SqlStore) -> None:
    group = HeldGroup(store)
    await group.queue(["b", "c", "d"])
    b, c, d = group.appends.values()
    d.cancel()  # gives up while waiting: never written
    await group.send()
    c.cancel()  # gives up while its group is in flight: written all the same
    await group.row_b.release()
    assert [r.message.seq for r in (await b).results] == [2]
    with pytest.raises(asyncio.CancelledError):
        await c
    with pytest.raises(asyncio.CancelledError):
        await d

    async def written() -> bool:
        return not _groups(store)._tasks

    await _until(written, "the group is written")
    # The next appends find the rows as they are.
    assert [r.message.seq for r in (await store.append_messages(T, "c", _say("c-2"))).results] == [3]
    assert [r.message.seq for r in (await store.append_messages(T, "d", _say("d-2"))).results] == [2]
    assert await _stored(store, "c") == [(1, "c-0"), (2, "c-1"), (3, "c-2")]
    assert await _stored(store, "d") == [(1, "d-0"), (2, "d-2")]


async def test_a_connection_lost_while_a_group_is_in_flight_loses_and_doubles_nothing(
    store: SqlStore,
) -> None:
    group = HeldGroup(store)
    await group.queue(["b", "c"])
    b, c = group.appends.values()
    await group.send()
    (group_pid,) = await group.row_b.blocked()
    killer = await asyncpg.connect(services.require_postgres())
    await killer.execute("SELECT pg_terminate_backend($1)", group_pid)
    await killer.close()
    # Both give way to the general operation: c is written at once, b once its row is free.
    assert [r.message.seq for r in (await c).results] == [2]
    await _until(_count_blocked(group.row_b, 1), "b's general operation waits for its row")
    await group.row_b.release()
    assert [r.message.seq for r in (await b).results] == [2]
    assert await _stored(store, "b") == [(1, "b-0"), (2, "b-1")]
    assert await _stored(store, "c") == [(1, "c-0"), (2, "c-1")]
