"""Scale-out: two server processes over one PostgreSQL and one Redis. A message appended on one
reaches a socket on the other, and a resume on the other fills the gap."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from tests import services
from tests.conftest import drop_keys, drop_schema
from tests.realtime.conftest import bearer, live_server, socket_to
from tests.redis_servers import RedisProcess
from tests.server import ServerProcess


@pytest.fixture
def instances(tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    schema = f"ck_fanout_{uuid.uuid4().hex[:8]}"
    prefix = f"ck-fanout-{uuid.uuid4().hex[:8]}"
    env = {
        "CHATKEEP_DURABLE_URL": f"{services.require_postgres()}?schema={schema}",
        "CHATKEEP_EVENTS_URL": f"{services.require_redis()}?prefix={prefix}",
        "CHATKEEP_EPHEMERAL_URL": f"{services.REDIS_URL}?prefix={prefix}",
        "CHATKEEP_USER_RATE_PER_SECOND": "0",
        "CHATKEEP_LOG_LEVEL": "warning",
    }
    first = ServerProcess(env, tmp_path / "first.log").start()
    second = ServerProcess(env, tmp_path / "second.log").start()
    try:
        yield first, second
    finally:
        first.stop()
        second.stop()
        asyncio.run(drop_schema(schema))
        asyncio.run(drop_keys(services.REDIS_URL, prefix))


async def test_events_cross_instances_and_a_resume_on_the_other_fills_the_gap(
    instances: tuple[ServerProcess, ServerProcess],
) -> None:
    first, second = instances
    async with httpx.AsyncClient(base_url=first.url, timeout=10) as one:
        token = (await one.get("/v1/dev/token", params={"user": "ann"})).json()["token"]
        headers = bearer(token)
        for mode in ("durable", "ephemeral"):
            created = await one.post(
                "/v1/conversations", json={"workspace": "w1", "mode": mode}, headers=headers
            )
            cid = created.json()["id"]

            async with socket_to(second.url, token) as watcher:
                await watcher.subscribe(conversation_id=cid, after_seq=0)
                await one.post(
                    f"/v1/conversations/{cid}/messages",
                    json={"role": "user", "content": "hi"},
                    headers=headers,
                )
                event = await watcher.until(lambda f: f["type"] == "message.created")
                assert (event["seq"], event["message"]["content"]) == (1, "hi")
                last_seen = event["seq"]

            for i in range(2, 21):  # while no socket is open on the second instance
                await one.post(
                    f"/v1/conversations/{cid}/messages",
                    json={"role": "user", "content": f"m{i}"},
                    headers=headers,
                )

            async with socket_to(second.url, token) as watcher:
                subscribed = await watcher.subscribe(conversation_id=cid, after_seq=last_seen)
                assert subscribed["replayed"] == 19
                seen = [
                    (await watcher.until(lambda f: f["type"] == "message.created"))["seq"] for _ in range(19)
                ]
                await one.post(
                    f"/v1/conversations/{cid}/messages",
                    json={"role": "user", "content": "live"},
                    headers=headers,
                )
                live = await watcher.until(lambda f: f["type"] == "message.created")
                assert seen + [live["seq"]] == list(range(2, 22))
                assert live["message"]["content"] == "live"


async def test_followers_are_told_to_resume_when_the_event_bus_loses_redis(tmp_path: Path) -> None:
    services.require_redis()
    try:
        redis_server = RedisProcess(tmp_path / "redis").start()
    except RuntimeError as exc:
        services.unavailable(f"cannot start a redis-server: {exc}")
    try:
        async with live_server(tmp_path, events_url=redis_server.url) as live:
            tenant = await live.tenant()
            token = live.token(tenant, "ann")
            c = await live.conversation(token)
            async with live.socket(token) as client:
                await client.subscribe(conversation_id=c["id"], after_seq=0)
                await live.append(token, c["id"], "before")
                assert (await client.until(lambda f: f["type"] == "message.created"))["seq"] == 1
                redis_server.stop()
                with pytest.raises(ConnectionClosed) as closed:
                    await client.until(lambda f: False, timeout=10)
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 4012
            await live.append(token, c["id"], "while the bus was down")
            redis_server.start()
            await asyncio.sleep(1.0)
            async with live.socket(token) as client:  # the resume fills what the bus could not carry
                await client.subscribe(conversation_id=c["id"], after_seq=1)
                assert (await client.until(lambda f: f["type"] == "message.created"))["message"][
                    "content"
                ] == ("while the bus was down")
                await live.append(token, c["id"], "after")
                assert (await client.until(lambda f: f["type"] == "message.created", timeout=10))["seq"] == 3
    finally:
        redis_server.stop()
