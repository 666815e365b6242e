"""Exactly once, in order, per conversation, tried the way it breaks: several writers at once, followers
that drop their connection abruptly at random points and resume (100+ times), two instances over
PostgreSQL and Redis, backlogs larger than the send queue, frames at the byte limit, and everyone
leaving at once. Each follower's sequence must be exactly the conversation's seqs, once each, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests import services
from tests.conftest import drop_keys, drop_schema, report
from tests.realtime.conftest import bearer, live_server
from tests.server import ServerProcess


class Follower:
    """A client that holds messages by seq and resumes from the last one it holds, checking every
    frame as it comes: the next seq, or a failure (a duplicate or a gap)."""

    def __init__(self, name: str, token: str, urls: list[str], rng: random.Random) -> None:
        self.name = name
        self.token = token
        self.urls = urls
        self.rng = rng
        self.seqs: list[int] = []
        self.cycles = 0

    @property
    def last(self) -> int:
        return self.seqs[-1] if self.seqs else 0

    def take(self, frame: dict[str, Any]) -> None:
        if frame.get("type") == "message.created":
            assert frame["seq"] == self.last + 1, f"{self.name}: got {frame['seq']} after {self.last}"
            self.seqs.append(frame["seq"])

    async def cycle(self, cid: str) -> None:
        """Connect, resume, read a random number of frames (maybe none, maybe mid-backlog), then drop
        the TCP connection without a closing handshake."""
        url = self.rng.choice(self.urls).replace("http://", "ws://") + "/v1/ws"
        ws = await connect(url)
        try:
            await ws.send(orjson.dumps({"type": "auth", "token": self.token}).decode())
            assert orjson.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "ready"
            await ws.send(
                orjson.dumps(
                    {"type": "subscribe", "id": "s", "conversation_id": cid, "after_seq": self.last}
                ).decode()
            )
            for _ in range(self.rng.randint(0, 25)):
                try:
                    frame = orjson.loads(await asyncio.wait_for(ws.recv(), 0.5))
                except TimeoutError:
                    break
                self.take(frame)
                assert frame.get("type") != "error", frame
        finally:
            ws.transport.abort()  # abrupt: no close frame, no FIN handshake
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.wait_closed(), 2)
        self.cycles += 1

    async def finish(self, cid: str, total: int) -> None:
        """A last, calm connection: everything up to `total`, then nothing more."""
        url = self.urls[0].replace("http://", "ws://") + "/v1/ws"
        async with connect(url) as ws:
            await ws.send(orjson.dumps({"type": "auth", "token": self.token}).decode())
            await ws.recv()
            await ws.send(
                orjson.dumps(
                    {"type": "subscribe", "id": "s", "conversation_id": cid, "after_seq": self.last}
                ).decode()
            )
            async with asyncio.timeout(30):
                while self.last < total:
                    self.take(orjson.loads(await ws.recv()))
            await ws.send(orjson.dumps({"type": "ping", "id": "end"}).decode())
            async with asyncio.timeout(10):
                while (frame := orjson.loads(await ws.recv())).get("id") != "end":
                    self.take(frame)  # nothing but the subscription's own frames may come now


async def write(
    http_urls: list[str], token: str, cid: str, writer: int, count: int, rng: random.Random
) -> None:
    """Append `count` messages with client ids, alternating instances, retrying some ids (a retry
    stores nothing)."""
    clients = [httpx.AsyncClient(base_url=url, timeout=30) for url in http_urls]
    try:
        for i in range(count):
            body = {"id": f"w{writer}-{i}", "role": "user", "content": f"writer {writer} message {i}"}
            for _ in range(2 if rng.random() < 0.1 else 1):
                answer = await rng.choice(clients).post(
                    f"/v1/conversations/{cid}/messages", json=body, headers=bearer(token)
                )
                assert answer.status_code in (200, 201), answer.text
            await asyncio.sleep(rng.random() * 0.01)
    finally:
        for client in clients:
            await client.aclose()


async def run_traffic(
    http_urls: list[str], token: str, cid: str, *, writers: int, per_writer: int, followers: int, cycles: int
) -> list[Follower]:
    rng = random.Random()
    crowd = [Follower(f"f{i}", token, http_urls, random.Random(rng.random())) for i in range(followers)]

    async def follow(f: Follower) -> None:
        for _ in range(cycles):
            await f.cycle(cid)

    await asyncio.gather(
        *(write(http_urls, token, cid, w, per_writer, random.Random(rng.random())) for w in range(writers)),
        *(follow(f) for f in crowd),
    )
    total = writers * per_writer
    for f in crowd:
        await f.finish(cid, total)
    return crowd


async def test_every_follower_gets_each_message_once_in_order_through_abrupt_resumes(tmp_path: Path) -> None:
    async with live_server(tmp_path) as live:
        tenant = await live.tenant()
        token = live.token(tenant, "ann")
        cid = (await live.conversation(token))["id"]
        crowd = await run_traffic([live.url], token, cid, writers=5, per_writer=40, followers=4, cycles=30)
        stored = (await live.http.get(f"/v1/conversations/{cid}?messages=0", headers=bearer(token))).json()
    assert stored["last_seq"] == stored["message_count"] == 200
    for f in crowd:
        assert f.seqs == list(range(1, 201)), f.name
    resumes = sum(f.cycles for f in crowd)
    assert resumes >= 100
    report(
        f"WebSocket resume (sqlite): {resumes} abrupt reconnects, "
        "4 followers x 200 messages from 5 writers, 0 gaps, 0 duplicates"
    )


@pytest.fixture
def two_instances(tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    schema = f"ck_once_{uuid.uuid4().hex[:8]}"
    prefix = f"ck-once-{uuid.uuid4().hex[:8]}"
    env = {
        "CHATKEEP_DURABLE_URL": f"{services.require_postgres()}?schema={schema}",
        "CHATKEEP_EVENTS_URL": f"{services.require_redis()}?prefix={prefix}",
        "CHATKEEP_EPHEMERAL_URL": f"{services.REDIS_URL}?prefix={prefix}",
        "CHATKEEP_USER_RATE_PER_SECOND": "0",
        "CHATKEEP_LOG_LEVEL": "warning",
        "CHATKEEP_DEV_MODE": "1",
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


@pytest.mark.parametrize("mode", ["durable", "ephemeral"])
async def test_two_instances_writers_on_both_and_resumes_on_either(
    two_instances: tuple[ServerProcess, ServerProcess], mode: str
) -> None:
    first, second = two_instances
    async with httpx.AsyncClient(base_url=first.url, timeout=10) as http:
        token = (await http.get("/v1/dev/token", params={"user": "ann"})).json()["token"]
        created = await http.post(
            "/v1/conversations", json={"workspace": "w1", "mode": mode}, headers=bearer(token)
        )
        cid = created.json()["id"]
        crowd = await run_traffic(
            [first.url, second.url], token, cid, writers=6, per_writer=30, followers=4, cycles=28
        )
        stored = (await http.get(f"/v1/conversations/{cid}?messages=0", headers=bearer(token))).json()
    assert stored["last_seq"] == stored["message_count"] == 180
    for f in crowd:
        assert f.seqs == list(range(1, 181)), f.name
    resumes = sum(f.cycles for f in crowd)
    assert resumes >= 100
    report(
        f"WebSocket resume (2 instances, postgresql + redis bus, {mode}): {resumes} abrupt reconnects, "
        "4 followers x 180 messages from 6 writers on both instances, 0 gaps, 0 duplicates"
    )


async def test_a_backlog_three_times_the_send_queue_arrives_whole(tmp_path: Path) -> None:
    async with live_server(tmp_path, ws_send_queue=20) as live:
        tenant = await live.tenant()
        token = live.token(tenant, "ann")
        cid = (await live.conversation(token))["id"]
        for start in range(0, 150, 50):
            batch = [{"id": f"m{i}", "role": "user", "content": "x" * 2000} for i in range(start, start + 50)]
            answer = await live.http.post(
                f"/v1/conversations/{cid}/messages:batch", json={"messages": batch}, headers=bearer(token)
            )
            assert answer.status_code == 201
        # A reader with small buffers: the backlog cannot all sit in the kernel, so it must be paced.
        async with live.socket(token, max_queue=1, receive_buffer=4096) as client:
            subscribed = await client.subscribe(conversation_id=cid, after_seq=0)
            assert (subscribed["last_seq"], subscribed["replayed"]) == (150, 150)
            seqs = [(await client.next())["seq"] for _ in range(150)]
            assert seqs == list(range(1, 151))
            await client.send(type="ping", id="p")
            assert (await client.next())["type"] == "pong"


async def test_after_4008_a_resume_gets_its_backlog(tmp_path: Path) -> None:
    async with live_server(tmp_path, ws_send_queue=20) as live:
        tenant = await live.tenant()
        token = live.token(tenant, "ann")
        cid = (await live.conversation(token))["id"]
        async with live.socket(token, max_queue=1, receive_buffer=4096) as slow:
            await slow.subscribe(conversation_id=cid, after_seq=0)
            for i in range(150):  # ~7 MB it does not read: more than socket buffers hold, and 20 queued
                await live.append(token, cid, secrets.token_urlsafe(36_000), id=f"m{i}")
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await slow.next(timeout=10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4008
        async with live.socket(token, max_queue=1, receive_buffer=4096) as again:
            subscribed = await again.subscribe(conversation_id=cid, after_seq=0)
            assert subscribed["replayed"] == 150  # over seven times the queue, paced: no 4008 this time
            assert [(await again.next(timeout=20))["seq"] for _ in range(150)] == list(range(1, 151))


@pytest.fixture
def small_frames(tmp_path: Path) -> Iterator[ServerProcess]:
    env = {
        "CHATKEEP_DURABLE_URL": f"sqlite:///{tmp_path}/frames.db",
        "CHATKEEP_MAX_BODY_BYTES": "4096",
        "CHATKEEP_DEV_MODE": "1",
        "CHATKEEP_LOG_LEVEL": "warning",
    }
    with ServerProcess(env, tmp_path / "frames.log") as server:  # the real `chatkeep serve`
        yield server


@pytest.mark.parametrize(("chars", "closed"), [(1990, False), (2060, True), (40_000, True)])
async def test_frames_are_measured_in_bytes(small_frames: ServerProcess, chars: int, closed: bool) -> None:
    token = httpx.get(f"{small_frames.url}/v1/dev/token", params={"user": "ann"}).json()["token"]
    frame = '{"type": "ping", "pad": "' + "é" * chars + '"}'  # two bytes a character
    assert (len(frame) < 4096 or chars > 2100) and ((len(frame.encode()) > 4096) == closed)
    async with connect(small_frames.url.replace("http://", "ws://") + "/v1/ws") as ws:
        await ws.send(orjson.dumps({"type": "auth", "token": token}).decode())
        await ws.recv()
        await ws.send(frame)
        if closed:
            with pytest.raises(ConnectionClosed) as ended:
                await asyncio.wait_for(ws.recv(), 5)
            assert ended.value.rcvd is not None and ended.value.rcvd.code == 1009
        else:
            assert orjson.loads(await asyncio.wait_for(ws.recv(), 5))["code"] == "invalid_frame"


async def test_everyone_leaving_at_once_is_quiet(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with live_server(tmp_path, ws_max_sockets_per_user=0) as live:  # 150 sockets of one user
        tenant = await live.tenant()
        token = live.token(tenant, "ann")
        cid = (await live.conversation(token))["id"]
        sockets = []
        for _ in range(150):
            ws = await connect(live.ws_url)
            await ws.send(orjson.dumps({"type": "auth", "token": token}).decode())
            await ws.recv()
            await ws.send(orjson.dumps({"type": "subscribe", "id": "s", "conversation_id": cid}).decode())
            await ws.recv()
            sockets.append(ws)
        writing = True

        async def writer() -> None:
            i = 0
            while writing:
                await live.append(token, cid, "y" * 3000, id=f"m{i}")
                i += 1

        task = asyncio.create_task(writer())
        await asyncio.sleep(0.3)
        for ws in sockets:  # every client vanishes mid-traffic, while frames are being written to it
            ws.transport.abort()
        await asyncio.sleep(0.5)
        writing = False
        await task
        for _ in range(50):
            if live.services.hub.followers(tenant.id) == 0:
                break
            await asyncio.sleep(0.1)
        assert live.services.hub.followers(tenant.id) == 0
        assert live.services.hub.channels == 0
    loud = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert loud == [], [f"{r.name}: {r.getMessage()}" for r in loud]
