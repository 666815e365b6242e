"""Redis outages on a private redis-server (append-only, `appendfsync always`) that tests stop,
kill and start again; apps driven in-process over HTTP, and the helpers they share."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import services
from tests.api.conftest import Api
from tests.redis_servers import RedisProcess


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisProcess]:
    services.require_redis()  # same requirement: a redis-server on this machine
    try:
        server = RedisProcess(tmp_path / "redis").start()
    except RuntimeError as exc:
        services.unavailable(f"cannot start a redis-server: {exc}")
    yield server
    server.stop()


async def wait_for(check: Callable[[], Awaitable[bool]], seconds: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.02)


def degraded(api: Api) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        answer = await api.client.get("/readyz")
        return answer.status_code == 200 and answer.json()["stores"]["ephemeral"] == "degraded"

    return check


def replayed(api: Api) -> Callable[[], Awaitable[bool]]:
    """Redis answers again and every journaled write is replayed."""

    async def check() -> bool:
        store = api.services.router.ephemeral
        answer = await api.client.get("/readyz")
        return answer.json()["status"] == "ready" and getattr(store, "pending", 0) == 0

    return check


async def all_messages(api: Api, headers: dict[str, str], cid: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    after = 0
    while True:
        page = await api.client.get(
            f"/v1/conversations/{cid}/messages", params={"after": after, "limit": 200}, headers=headers
        )
        assert page.status_code == 200, page.text
        found += page.json()["messages"]
        if not page.json()["has_more"]:
            return found
        after = found[-1]["seq"]


def metric(text: str, name: str, store: str = "ephemeral") -> float:
    """The value of one sample of the Prometheus text."""
    prefix = f'{name}{{store="{store}"}} '
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix) :])
    raise AssertionError(f"{name} not in /metrics")
