"""Fixtures of the store tests beyond the shared ones in tests/conftest.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from chatkeep.stores import Store, open_store
from tests import services
from tests.redis_servers import RedisProcess


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """A redis-server of the test's own: its statistics, clients and script cache are the test's
    alone, and it may be stopped."""
    services.require_redis()
    server = RedisProcess(tmp_path / "redis")
    try:
        server.start()
    except RuntimeError as exc:
        services.unavailable(f"cannot start a redis-server: {exc}")
    yield server
    server.stop()


@pytest.fixture
async def private_client(private_redis: RedisProcess) -> AsyncIterator[aioredis.Redis]:
    """A client of the test's own redis-server, answers decoded."""
    client = aioredis.Redis.from_url(private_redis.url, decode_responses=True, socket_connect_timeout=2)
    yield client
    await client.aclose()


@pytest.fixture
async def private_store(private_redis: RedisProcess) -> AsyncIterator[Store]:
    """A Redis store on the test's own redis-server, connected."""
    store = open_store(private_redis.url)
    await store.connect()
    yield store
    await store.close()
