"""What only the SQLite store does: group commit, several writers on one file, durable options."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from chatkeep.errors import ConfigError, NotFound
from chatkeep.models import Conversation, Mode, NewMessage, Role
from chatkeep.stores import open_store
from chatkeep.stores.sql import SqlStore


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
    await store.close()
    with pytest.raises(ConfigError):
        SqlStore(f"sqlite:///{tmp_path}/x.db?synchronous=sometimes")._open_sqlite()
    with pytest.raises(ConfigError):
        await SqlStore("sqlite://").connect()
