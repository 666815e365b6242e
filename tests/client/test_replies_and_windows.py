"""Streaming replies (finished, interrupted by an exception, cancelled) and token windows that read
only the pages they need, against a real server."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from chatkeep.client import AsyncClient, Client, ConflictError, Message, MessageStatus, NewMessage, Usage
from tests.client.conftest import Server
from tests.conftest import unique


class Boom(Exception):
    pass


async def test_stream_reply_finishes_complete(client: AsyncClient) -> None:
    cid = (await client.create_conversation(unique("w"))).id
    async with client.stream_reply(cid, metadata={"model": "m1"}) as reply:
        assert reply.message is not None and reply.message.status is MessageStatus.STREAMING
        first = await reply.send("Hello")
        second = await reply.send(", world")
        reply.usage = Usage(12, 3)
    assert [(d.offset, d.appended, d.length) for d in (first, second)] == [
        (0, "Hello", 5),
        (5, ", world", 12),
    ]
    assert reply.message is not None
    stored = (await client.get_conversation(cid)).messages
    assert [(m.id, m.role.value, m.content, m.status, m.usage, m.metadata) for m in stored] == [
        (reply.id, "assistant", "Hello, world", MessageStatus.COMPLETE, Usage(12, 3), {"model": "m1"})
    ]
    assert stored[0] == reply.message


async def test_stream_reply_is_interrupted_when_the_block_raises(client: AsyncClient) -> None:
    cid = (await client.create_conversation(unique("w"))).id
    with pytest.raises(Boom):
        async with client.stream_reply(cid) as reply:
            await reply.send("partial")
            raise Boom()
    (stored,) = (await client.get_conversation(cid)).messages
    assert (stored.id, stored.content, stored.status) == (reply.id, "partial", MessageStatus.INTERRUPTED)
    with pytest.raises(ConflictError) as closed:
        await client.append_delta(cid, reply.id, " more", offset=7)
    assert closed.value.code == "not_streaming"


async def test_stream_reply_is_interrupted_when_the_task_is_cancelled(client: AsyncClient) -> None:
    cid = (await client.create_conversation(unique("w"))).id
    started = asyncio.Event()

    async def answer() -> None:
        async with client.stream_reply(cid) as reply:
            await reply.send("so far")
            started.set()
            await asyncio.sleep(30)

    task = asyncio.create_task(answer())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (stored,) = (await client.get_conversation(cid)).messages
    assert (stored.content, stored.status) == ("so far", MessageStatus.INTERRUPTED)


def test_blocking_stream_reply(sync_client: Client) -> None:
    cid = sync_client.create_conversation(unique("w")).id
    with sync_client.stream_reply(cid) as reply:
        reply.send("a")
        reply.send("b")
    with pytest.raises(Boom), sync_client.stream_reply(cid) as broken:
        broken.send("c")
        raise Boom()
    stored = sync_client.list_messages(cid).messages
    assert [(m.id, m.content, m.status) for m in stored] == [
        (reply.id, "ab", MessageStatus.COMPLETE),
        (broken.id, "c", MessageStatus.INTERRUPTED),
    ]


def counting(server: Server) -> tuple[httpx.AsyncClient, list[str]]:
    requests: list[str] = []

    async def record(request: httpx.Request) -> None:
        requests.append(str(request.url.params))

    return httpx.AsyncClient(event_hooks={"request": [record]}), requests


async def test_latest_within_reads_only_the_pages_needed(server: Server, token: str) -> None:
    async with AsyncClient(server.url, token) as c:
        cid = (await c.create_conversation(unique("w"))).id
        # 30 messages of 40 characters: 10 tokens each by the estimate
        await c.append_batch(cid, [NewMessage("user", f"{i:02d}" + "x" * 38) for i in range(1, 31)])
    http, requests = counting(server)
    async with AsyncClient(server.url, token, http=http) as c:
        window = await c.latest_within(cid, max_tokens=105, page_size=4)
        assert [m.seq for m in window] == list(range(21, 31))
        # pages of 4 backwards: 27-30, 23-26, 19-22 (where the budget ends)
        assert requests == ["limit=4", "before=27&limit=4", "before=23&limit=4"]

        requests.clear()
        assert [m.seq for m in await c.latest_within(cid, max_tokens=10_000, count=3)] == [28, 29, 30]
        assert requests == ["limit=3"]

        requests.clear()
        everything = await c.latest_within(cid, max_tokens=10_000, page_size=200)
        assert [m.seq for m in everything] == list(range(1, 31)) and requests == ["limit=200"]
        assert await c.latest_within(cid, max_tokens=0) == [] and len(requests) == 1
    await http.aclose()


async def test_latest_within_counts_stored_usage_then_the_counter(client: AsyncClient) -> None:
    cid = (await client.create_conversation(unique("w"))).id
    await client.append_batch(
        cid,
        [
            NewMessage("user", "question one", usage=Usage(input_tokens=50)),
            NewMessage("assistant", "answer one", usage=Usage(input_tokens=900, output_tokens=20)),
            NewMessage("user", "question two"),
            NewMessage("assistant", "answer two", usage=Usage(output_tokens=30)),
        ],
    )
    words: list[str] = []

    def counter(message: Message) -> int:
        words.append(message.content)
        return len(message.content.split())

    # 30 (stored) + 2 (counted) + 20 (stored output) = 52; the first (50) does not fit in 60
    window = await client.latest_within(cid, max_tokens=60, counter=counter)
    assert [m.content for m in window] == ["answer one", "question two", "answer two"]
    assert words == ["question two"]
    # by the estimate alone "question two" is 3 tokens (12 characters)
    assert [m.seq for m in await client.latest_within(cid, max_tokens=53)] == [2, 3, 4]
    assert [m.seq for m in await client.latest_within(cid, max_tokens=52)] == [3, 4]


def test_blocking_latest_within(sync_client: Client) -> None:
    cid = sync_client.create_conversation(unique("w")).id
    sync_client.append_batch(cid, [NewMessage("user", "x" * 8) for _ in range(5)])  # 2 tokens each
    assert [m.seq for m in sync_client.latest_within(cid, max_tokens=7, page_size=2)] == [3, 4, 5]
