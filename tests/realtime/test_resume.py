"""Resume without a gap or a duplicate; a streaming reply that survives a reconnect; a slow
consumer closed without stalling anyone else."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from tests.realtime.conftest import Live, bearer, live_server


@pytest.fixture
async def live(tmp_path: Path):  # type: ignore[no-untyped-def]
    async with live_server(tmp_path) as server:
        yield server


async def test_a_client_that_drops_mid_stream_resumes_without_gap_or_duplicate(live: Live) -> None:
    tenant = await live.tenant()
    token = live.token(tenant, "ann")
    c = await live.conversation(token)
    total = 120
    writing = asyncio.Event()

    async def writer() -> None:
        for i in range(1, total + 1):
            await live.append(token, c["id"], f"m{i}", id=f"m{i}")
            if i == 20:
                writing.set()
            await asyncio.sleep(0.004)

    seen: list[int] = []
    task = asyncio.create_task(writer())
    async with live.socket(token) as client:
        await client.subscribe(conversation_id=c["id"], after_seq=0)
        await writing.wait()
        while len(seen) < 30:  # take a few live ones, then drop in the middle of the traffic
            frame = await client.until(lambda f: f["type"] == "message.created")
            seen.append(frame["seq"])
    await asyncio.sleep(0.1)  # messages go on arriving while the client is away
    async with live.socket(token) as client:
        subscribed = await client.subscribe(conversation_id=c["id"], after_seq=seen[-1])
        assert subscribed["type"] == "subscribed" and subscribed["replayed"] > 0
        await task
        while len(seen) < total:
            frame = await client.until(lambda f: f["type"] == "message.created", timeout=10)
            seen.append(frame["seq"])
        await client.send(type="ping", id="end")
        tail = await client.until(lambda f: f["type"] in ("pong", "message.created"))
        assert tail["type"] == "pong"  # nothing more came: no duplicate after the last one
    assert seen == list(range(1, total + 1))


async def test_a_streaming_reply_survives_a_reconnect(live: Live) -> None:
    tenant = await live.tenant()
    token = live.token(tenant, "ann")
    c = await live.conversation(token)
    await live.append(token, c["id"], "Tell me a story")
    words = [f"word{i} " for i in range(60)]
    opened = asyncio.Event()

    async def assistant() -> None:  # the writer streams over its own socket
        async with live.socket(token) as writer:
            reply = {"id": "reply", "role": "assistant", "content": "", "status": "streaming"}
            await writer.send(type="append", id="open", conversation_id=c["id"], message=reply)
            await writer.until(lambda f: f.get("id") == "open")
            opened.set()
            sent = 0
            for i, word in enumerate(words):
                await writer.send(
                    type="stream.delta",
                    id=f"d{i}",
                    conversation_id=c["id"],
                    message_id="reply",
                    text=word,
                    offset=sent,
                )
                sent += len(word)
                await asyncio.sleep(0.01)
            await writer.until(lambda f: f.get("id") == f"d{len(words) - 1}")
            await writer.send(type="stream.finish", id="fin", conversation_id=c["id"], message_id="reply")
            assert (await writer.until(lambda f: f.get("id") == "fin"))["message"]["status"] == "complete"

    def apply(content: str, frame: dict[str, Any]) -> str:
        offset, text = frame["offset"], frame["text"]
        assert offset <= len(content), "a gap in the deltas"
        return content[:offset] + text if offset + len(text) > len(content) else content

    task = asyncio.create_task(assistant())
    await opened.wait()
    content = ""
    async with live.socket(token) as reader:
        await reader.subscribe(conversation_id=c["id"], after_seq=1)
        first = await reader.until(lambda f: f["type"] == "message.created")
        content = first["message"]["content"]
        for _ in range(10):
            content = apply(content, await reader.until(lambda f: f["type"] == "message.delta"))
    await asyncio.sleep(0.1)  # a reload in the middle of the reply
    async with live.socket(token) as reader:
        await reader.subscribe(conversation_id=c["id"], after_seq=1)  # the reply is not final yet
        partial = await reader.until(lambda f: f["type"] == "message.created")
        assert partial["message"]["status"] == "streaming" and len(partial["message"]["content"]) >= len(
            content
        )
        content = partial["message"]["content"]
        while True:
            frame = await reader.until(
                lambda f: f["type"] in ("message.delta", "message.updated"), timeout=10
            )
            if frame["type"] == "message.updated":
                break
            content = apply(content, frame)
        assert frame["message"]["status"] == "complete"
        assert content == frame["message"]["content"] == "".join(words)
    await task


async def test_a_slow_consumer_is_closed_and_does_not_stall_the_others(tmp_path: Path) -> None:
    async with live_server(tmp_path, ws_send_queue=20) as live:
        tenant = await live.tenant()
        token = live.token(tenant, "ann")
        c = await live.conversation(token)
        async with live.socket(token, max_queue=1, receive_buffer=8192) as slow, live.socket(token) as fast:
            await slow.subscribe(conversation_id=c["id"])
            await fast.subscribe(conversation_id=c["id"])
            received = 0

            async def read_fast() -> None:
                nonlocal received
                while received < 150:
                    await fast.until(lambda f: f["type"] == "message.created", timeout=20)
                    received += 1

            reader = asyncio.create_task(read_fast())
            for _ in range(150):  # 9 MB that compression cannot shrink: more than socket buffers hold
                await live.append(token, c["id"], secrets.token_urlsafe(44_000))
            await reader
            assert received == 150  # the fast client got everything, unhindered
            with pytest.raises(ConnectionClosed) as closed:
                while True:  # the slow one now reads what was sent to it, then the close
                    await slow.next(timeout=10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4008
        await asyncio.sleep(0.1)
        assert live.services.hub.followers(tenant.id) == 0
        stored = (
            await live.http.get(f"/v1/conversations/{c['id']}?messages=0", headers=bearer(token))
        ).json()
        assert stored["message_count"] == 150
