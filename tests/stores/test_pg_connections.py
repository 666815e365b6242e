"""The connections of PostgreSQL's hot writes (stores/sql/connections.py), on the real server: never
more open than the size, none lost to a caller that gave up, a broken one replaced, idle ones closed."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import asyncpg
import pytest

from chatkeep.stores.sql.connections import Connections
from tests import services


async def _connect() -> Any:
    return await asyncpg.connect(services.require_postgres(), timeout=10)


async def _backends(pids: set[int]) -> set[int]:
    """Which of `pids` are still server processes."""
    conn = await _connect()
    try:
        rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE pid = any($1::int[])", list(pids))
        return {row["pid"] for row in rows}
    finally:
        await conn.close()


async def test_many_writers_share_at_most_size_connections_and_give_all_back() -> None:
    pool = Connections(_connect, 4)
    pids: set[int] = set()
    busy = 0
    most = 0

    async def write(i: int) -> None:
        nonlocal busy, most
        conn = await pool.acquire()
        busy += 1
        most = max(most, busy)
        try:
            pids.add(await conn.fetchval("SELECT pg_backend_pid()"))
            await asyncio.sleep(random.random() / 200)
        finally:
            busy -= 1
            pool.release(conn)

    try:
        await asyncio.gather(*(write(i) for i in range(200)))
        assert most == 4 and len(pids) == 4
        assert (pool._open, len(pool._idle), len(pool._waiting)) == (4, 4, 0)
    finally:
        await pool.close()
    assert pool._open == 0
    assert await _backends(pids) == set()


async def test_a_writer_that_gives_up_waiting_loses_no_connection() -> None:
    pool = Connections(_connect, 2)
    try:
        held = [await pool.acquire(), await pool.acquire()]
        waiters = [asyncio.create_task(pool.acquire()) for _ in range(6)]
        await asyncio.sleep(0.01)
        for task in waiters[::2]:
            task.cancel()
        pool.release(held[0])  # handed to the first waiter, which was cancelled: the next one gets it
        pool.release(held[1])
        got = [await waiters[1], await waiters[3]]
        for conn in got:
            pool.release(conn)  # one to waiter 5 (waiter 4 gave up), one back to the idle list
        third = await waiters[5]
        pool.release(third)
        for task in waiters[::2]:
            with pytest.raises(asyncio.CancelledError):
                await task
        assert (pool._open, len(pool._idle), len(pool._waiting)) == (2, 2, 0)
    finally:
        await pool.close()


async def test_a_broken_connection_is_closed_and_a_waiter_opens_another() -> None:
    pool = Connections(_connect, 1)
    try:
        first = await pool.acquire()
        first_pid = first.get_server_pid()
        waiting = asyncio.create_task(pool.acquire())
        await asyncio.sleep(0.01)
        pool.release(first, broken=True)
        second = await asyncio.wait_for(waiting, 5)
        assert second is not first and first.is_closed()
        assert await second.fetchval("SELECT pg_backend_pid()") != first_pid
        pool.release(second)
        assert (pool._open, len(pool._idle)) == (1, 1)
        assert await _backends({first_pid}) == set()
    finally:
        await pool.close()


async def test_a_connection_the_server_closed_while_idle_is_not_handed_out() -> None:
    pool = Connections(_connect, 2)
    try:
        conn = await pool.acquire()
        pid = conn.get_server_pid()
        pool.release(conn)
        admin = await _connect()
        await admin.execute("SELECT pg_terminate_backend($1)", pid)
        await admin.close()
        for _ in range(100):  # until the driver has seen the connection end
            if conn.is_closed():
                break
            await asyncio.sleep(0.01)
        again = await pool.acquire()
        assert again is not conn and await again.fetchval("SELECT 1") == 1
        pool.release(again)
        assert (pool._open, len(pool._idle)) == (1, 1)
    finally:
        await pool.close()


async def test_idle_connections_close_after_their_time_and_a_closed_pool_opens_none() -> None:
    pool = Connections(_connect, 3, idle_seconds=0.2)
    conns = [await pool.acquire() for _ in range(3)]
    pids = {conn.get_server_pid() for conn in conns}
    for conn in conns:
        pool.release(conn)
    await asyncio.sleep(0.5)
    assert (pool._open, pool._idle) == (0, [])
    assert await _backends(pids) == set()
    await pool.close()
    with pytest.raises(asyncpg.InterfaceError):
        await pool.acquire()


async def test_a_connection_handed_to_a_writer_as_it_gives_up_goes_back() -> None:
    pool = Connections(_connect, 1)
    try:
        held = await pool.acquire()
        waiting = asyncio.create_task(pool.acquire())
        await asyncio.sleep(0.01)
        pool.release(held)  # handed to the waiting writer...
        waiting.cancel()  # ...which gives up before it resumes
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert (pool._open, len(pool._idle)) == (1, 1)
        again = await asyncio.wait_for(pool.acquire(), 5)
        assert again is held
        pool.release(again)
    finally:
        await pool.close()
