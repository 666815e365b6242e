"""Fixtures of the store tests beyond the shared ones in tests/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

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
