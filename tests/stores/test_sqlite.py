"""What only the SQLite store does: group commit, several writers on one file, durable options."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from chatkeep.errors import ConfigError, NotFound, StoreUnavailable
from chatkeep.models import (
    Conversation,
    LimitPolicy,
    MessageStatus,
    Mode,
    NewMessage,
    Role,
    Usage,
)
from chatkeep.stores import open_store
from chatkeep.stores.requests import Append, Extend, Finish, Ref
from chatkeep.stores.sql import SqlStore, message_ops, sqlite
from chatkeep.stores.sql.engine import sqlite_engines
from chatkeep.stores.sql.writer import MAX_GROUP, GroupCommitWriter
from chatkeep.stores.url import StoreURL


def conv(cid: str) -> Conversation:
    return Conversation(tenant="t", id=cid, workspace="w", user="u", mode=Mode.DURABLE)


def msg(mid: str) -> NewMessage:
    return NewMessage(id=mid, role=Role.USER, content=mid)


async def test_a_failing_write_does_not_spoil_the_writes_committed_with_it(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/group.db")
    await store.connect()
    await store.migrate()
    for i in range(20):
        await store.create_conversation(conv(f"c{i}"))
    # 40 appends at once share commits; every other one targets a conversation that does not exist.
    calls = [
        store.append_messages("t", f"c{i // 2}" if i % 2 == 0 else f"missing{i}", [msg(f"m{i}")])
        for i in range(40)
    ]
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(r, NotFound) for r in results[1::2])
    assert all(not isinstance(r, BaseException) and r.results[0].created for r in results[0::2])
    await store.close()

    reopened = open_store(f"sqlite:///{tmp_path}/group.db")
    await reopened.connect()
    for i in range(20):
        assert (await reopened.get_conversation("t", f"c{i}")).message_count == 1
    await reopened.close()


async def test_two_stores_on_one_file_write_without_locking_errors(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/shared.db"
    first, second = open_store(url), open_store(url)
    for store in (first, second):
        await store.connect()
        await store.migrate()
    await first.create_conversation(conv("shared"))
    writes = [(first if i % 2 else second).append_messages("t", "shared", [msg(f"m{i}")]) for i in range(100)]
    outcomes = await asyncio.gather(*writes)
    assert sorted(o.results[0].message.seq for o in outcomes) == list(range(1, 101))
    for store in (first, second):
        await store.close()


async def test_wal_mode_and_synchronous_option(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path}/opts.db?synchronous=normal")
    await store.connect()
    mode = await store._run(lambda conn: conn.exec_driver_sql("PRAGMA journal_mode").scalar_one())
    sync = await store._run(lambda conn: conn.exec_driver_sql("PRAGMA synchronous").scalar_one())
    assert (mode, sync) == ("wal", 1)  # 1 = NORMAL
    # The writer's savepoints keep their sub-journal in memory, as the readers their sorts (2 = MEMORY).
    for write in (False, True):
        temp = await store._run(
            lambda conn: conn.exec_driver_sql("PRAGMA temp_store").scalar_one(), write=write
        )
        assert temp == 2
    await store.close()
    with pytest.raises(ConfigError):
        SqlStore(f"sqlite:///{tmp_path}/x.db?synchronous=sometimes")._open_sqlite()
    with pytest.raises(ConfigError):
        await SqlStore("sqlite://").connect()


async def test_writes_arriving_together_share_commits_of_at_most_max_group(tmp_path: Path) -> None:
    _, engine, _ = sqlite_engines(StoreURL.parse(f"sqlite:///{tmp_path}/writer.db"))
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (n INTEGER PRIMARY KEY)")
    writer = GroupCommitWriter(engine)
    groups: list[sa.Connection] = []  # the transaction each write ran in, kept so that each is distinct

    def insert(n: int) -> Callable[[sa.Connection], int]:
        def operation(conn: sa.Connection) -> int:
            groups.append(conn)
            conn.exec_driver_sql(f"INSERT INTO t VALUES ({n})")
            return n

        return operation

    total = 3 * MAX_GROUP + 8
    done = await asyncio.wait_for(asyncio.gather(*(writer.submit(insert(n)) for n in range(total))), 30)
    assert done == list(range(total))
    sizes = Counter(id(conn) for conn in groups).values()
    assert sum(sizes) == total and max(sizes) <= MAX_GROUP
    assert len(sizes) < total  # they shared commits
    # Stopping finishes what is queued: every write queued before it is committed and answered.
    queued = [asyncio.ensure_future(writer.submit(insert(total + n))) for n in range(50)]
    await asyncio.sleep(0)  # each has queued its write
    stopping = threading.Thread(target=writer.stop, daemon=True)  # stop() waits for the writer
    stopping.start()
    await asyncio.to_thread(stopping.join, 30)
    assert not stopping.is_alive()
    assert await asyncio.wait_for(asyncio.gather(*queued), 30) == list(range(total, total + 50))
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*), min(n), max(n) FROM t").one() == (
            total + 50,
            0,
            total + 49,
        )
    engine.dispose()


# -- appends, deltas and finishes on the driver connection (stores/sql/sqlite.py) ----------------------


class Refused(Exception):
    """A write that fails after it has written."""


async def test_a_write_failing_after_it_wrote_leaves_nothing_and_spares_its_group(tmp_path: Path) -> None:
    store = await opened(tmp_path)
    for i in range(20):
        await store.create_conversation(conv(f"c{i}"))

    def write_then_fail(cid: str) -> Callable[[sa.Connection], None]:
        def operation(conn: sa.Connection) -> None:
            request = Append(Ref("t", cid), [msg(f"lost-{cid}"), msg(f"lost2-{cid}")])
            message_ops.append(sqlite.Driver(conn), request, 1)
            raise Refused

        return operation

    # 40 writes at once share commits: every other one appends two messages, then fails.
    calls = [
        store.append_messages("t", f"c{i // 2}", [msg(f"m{i}")])
        if i % 2 == 0
        else store._run(write_then_fail(f"c{i // 2}"), write=True)
        for i in range(40)
    ]
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(r, Refused) for r in results[1::2])
    await store.close()

    reopened = await opened(tmp_path)
    for i in range(20):
        c = await reopened.get_conversation("t", f"c{i}")
        page = await reopened.read_messages(c)
        assert (c.message_count, c.last_seq) == (1, 1)
        assert [(m.id, m.seq) for m in page.messages] == [(f"m{2 * i}", 1)]
    await reopened.close()


async def test_batches_longer_than_one_statement_insert_all_or_replay_the_stored(tmp_path: Path) -> None:
    store = await opened(tmp_path)
    await store.create_conversation(conv("long"))
    count = 2 * sqlite.ROWS_A_STATEMENT + 7
    first = await store.append_messages("t", "long", [msg(f"a{i}") for i in range(count)])
    assert [(r.message.seq, r.created) for r in first.results] == [(i + 1, True) for i in range(count)]
    # One id of the next batch was stored, in its third statement's rows: the rows of the first two
    # are undone, and the batch is appended around the stored message.
    batch = [msg(f"b{i}") for i in range(count)]
    batch[count - 3] = msg("a5")
    second = await store.append_messages("t", "long", batch)
    seqs = [(r.message.id, r.message.seq, r.created) for r in second.results]
    assert seqs[count - 3] == ("a5", 6, False)
    assert [s for s in seqs if s[2]] == [
        (f"b{i}", count + 1 + i - (i > count - 3), True) for i in range(count) if i != count - 3
    ]
    c = await store.get_conversation("t", "long")
    assert (c.message_count, c.last_seq) == (2 * count - 1, 2 * count - 1)
    page = await store.read_messages(c, limit=2 * count)
    assert [m.id for m in page.messages] == [f"a{i}" for i in range(count)] + [
        f"b{i}" for i in range(count) if i != count - 3
    ]
    await store.close()


NOW = 1_000
STREAM_USAGE = Usage(5, 6)


async def test_the_driver_connection_writes_what_the_general_operations_write(tmp_path: Path) -> None:
    """Appends, deltas and finishes run on the driver connection give the same results, and store the
    same rows, as the same operations (`message_ops`) run through SQLAlchemy on the same store."""
    store = SqlStore(f"sqlite:///{tmp_path}/same.db", clock=lambda: NOW)
    await store.connect()
    await store.migrate()
    new = [
        NewMessage(id="q", role=Role.USER, content="hi", parts=[{"k": [1, None]}], metadata={"m": 1}),
        NewMessage(id="r", role=Role.ASSISTANT, usage=Usage(3, 4), status=MessageStatus.STREAMING),
    ]
    seen = []
    for cid, writes in (("quick", quick_writes), ("general", general_writes)):
        await store.create_conversation(replace(conv(cid), tags=("a", "b"), ttl_ms=60_000, title="T"))
        results = await writes(store, Ref("t", cid), new)
        conversation = await store.get_conversation("t", cid)
        page = await store.read_messages(conversation)
        seen.append([repr(x).replace(f"'{cid}'", "'?'") for x in (*results, conversation, page)])
    assert seen[0] == seen[1]
    assert "parts=[{'k': [1, None]}]" in seen[0][4] and "tags=('a', 'b')" in seen[0][3]
    await store.close()


async def quick_writes(store: SqlStore, ref: Ref, new: list[NewMessage]) -> tuple[object, ...]:
    return (
        await store.append(Append(ref, new, max_messages=10, policy=LimitPolicy.TRIM)),
        await store.extend(Extend(ref, "r", "lo", offset=0)),
        await store.finish(Finish(ref, "r", MessageStatus.COMPLETE, STREAM_USAGE)),
    )


async def general_writes(store: SqlStore, ref: Ref, new: list[NewMessage]) -> tuple[object, ...]:
    def through_sqlalchemy(operation: Callable[[message_ops.Run, Any, int], Any], request: Any) -> Any:
        return store._run(lambda conn: operation(message_ops.Statements(conn), request, NOW), write=True)

    return (
        await through_sqlalchemy(
            message_ops.append, Append(ref, new, max_messages=10, policy=LimitPolicy.TRIM)
        ),
        await through_sqlalchemy(message_ops.extend, Extend(ref, "r", "lo", offset=0)),
        await through_sqlalchemy(message_ops.finish, Finish(ref, "r", MessageStatus.COMPLETE, STREAM_USAGE)),
    )


async def test_driver_errors_are_store_unavailable(tmp_path: Path) -> None:
    store = await opened(tmp_path)
    await store.create_conversation(conv("c"))
    streaming = NewMessage(id="s", role=Role.ASSISTANT, status=MessageStatus.STREAMING)
    await store.append_messages("t", "c", [streaming])
    # Triggers of the writer's connection make its writes of messages fail as a lost table would.
    for event in ("INSERT", "UPDATE"):
        await store._run(
            lambda conn, event=event: conn.exec_driver_sql(
                f"CREATE TEMP TRIGGER fail_{event} BEFORE {event} ON main.messages "
                "BEGIN DELETE FROM missing_table; END"
            ),
            write=True,
        )
    with pytest.raises(StoreUnavailable):
        await store.append_messages("t", "c", [msg("m")])
    with pytest.raises(StoreUnavailable):
        await store.extend_message("t", "c", "s", "more")
    with pytest.raises(StoreUnavailable):
        await store.finish_message("t", "c", "s", MessageStatus.COMPLETE)
    for event in ("INSERT", "UPDATE"):
        await store._run(
            lambda conn, event=event: conn.exec_driver_sql(f"DROP TRIGGER fail_{event}"), write=True
        )
    outcome = await store.append_messages("t", "c", [msg("m")])
    assert (outcome.results[0].message.seq, outcome.conversation.message_count) == (2, 2)
    c = await store.get_conversation("t", "c")
    page = await store.read_messages(c)
    assert [(m.id, m.content, m.status) for m in page.messages] == [
        ("s", "", MessageStatus.STREAMING),
        ("m", "m", MessageStatus.COMPLETE),
    ]
    await store.close()


async def opened(tmp_path: Path) -> SqlStore:
    store = SqlStore(f"sqlite:///{tmp_path}/store.db")
    await store.connect()
    await store.migrate()
    return store
