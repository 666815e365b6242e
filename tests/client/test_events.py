"""The event stream against a real server: several writers, the client's socket cut abruptly again
and again, and still every message exactly once, in order; a streamed reply followed across cuts to
its exact text."""

from __future__ import annotations

import asyncio

import pytest

from chatkeep.client import AsyncClient, Event, NotFoundError
from tests.client.conftest import FAST, Server
from tests.conftest import unique


async def test_every_message_once_in_order_across_abrupt_disconnects(server: Server, token: str) -> None:
    writers, each = 4, 40
    async with AsyncClient(server.url, token, retry=FAST) as c:
        cid = (await c.create_conversation(unique("w"))).id
        await c.append(cid, "system", "before")  # seq 1: after_seq=1 starts past it

        async def write(n: int) -> None:
            async with AsyncClient(server.url, token, retry=FAST) as w:
                for i in range(each):
                    await w.append(cid, "user", f"w{n}-{i}")
                    await asyncio.sleep(0.002)

        stream = c.events(cid, after_seq=1)
        seqs: list[int] = []
        contents: list[str] = []
        tasks = [asyncio.create_task(write(n)) for n in range(writers)]
        async with asyncio.timeout(30):
            async for event in stream:
                assert event.type == "message.created" and event.message is not None
                seqs.append(event.seq)
                contents.append(event.message.content)
                if len(seqs) in (20, 50, 80, 110) and stream.connection is not None:
                    # no close frame, as when a network drops; the writers go on meanwhile
                    stream.connection.transport.abort()
                if len(seqs) == writers * each:
                    break
        await asyncio.gather(*tasks)
        await stream.aclose()

    assert seqs == list(range(2, writers * each + 2))
    assert sorted(contents) == sorted(f"w{n}-{i}" for n in range(writers) for i in range(each))
    assert stream.connects == 5  # the first connection and one after each of the four cuts


async def test_a_streamed_reply_is_followed_to_its_exact_text_across_cuts(server: Server, token: str) -> None:
    pieces = [f"token{i} " for i in range(60)]
    async with AsyncClient(server.url, token, retry=FAST) as c:
        cid = (await c.create_conversation(unique("w"))).id
        stream = c.events(cid, after_seq=0)
        events: list[Event] = []

        async def follow() -> None:
            deltas = 0
            async for event in stream:
                events.append(event)
                if event.type == "message.updated":
                    return
                if event.type == "message.delta":
                    deltas += 1
                    if deltas in (3, 8, 13) and stream.connection is not None:
                        stream.connection.transport.abort()  # mid-reply, while it keeps growing

        async def write() -> None:
            async with AsyncClient(server.url, token, retry=FAST) as w, w.stream_reply(cid) as reply:
                for piece in pieces:
                    await reply.send(piece)
                    await asyncio.sleep(0.004)

        follower = asyncio.create_task(follow())
        while stream.connection is None:
            await asyncio.sleep(0.005)
        async with asyncio.timeout(30):
            await asyncio.gather(write(), follower)
        await stream.aclose()

    created = [e for e in events if e.type == "message.created"]
    assert len(created) == 1 and created[0].message is not None
    text = created[0].message.content
    for delta in (e for e in events if e.type == "message.delta"):
        assert delta.offset == len(text)  # contiguous: nothing twice, nothing missing
        text += delta.text
    assert text == "".join(pieces)
    updated = [e for e in events if e.type == "message.updated"]
    assert len(updated) == 1 and updated[0].message is not None
    assert (updated[0].message.content, updated[0].message.status.value) == (text, "complete")
    assert stream.connects == 4


async def test_from_now_a_deletion_ends_the_stream(server: Server, token: str) -> None:
    async with AsyncClient(server.url, token, retry=FAST) as c:
        cid = (await c.create_conversation(unique("w"))).id
        await c.append(cid, "user", "old")
        stream = c.events(cid)
        types: list[tuple[str, int]] = []

        async def follow() -> None:
            async for event in stream:
                types.append((event.type, event.seq))

        follower = asyncio.create_task(follow())
        while stream.connection is None:
            await asyncio.sleep(0.005)
        await c.append(cid, "user", "new")
        await c.delete_conversation(cid)
        async with asyncio.timeout(10):
            await follower
    assert types[0] == ("message.created", 2) and types[-1][0] == "conversation.deleted"
    assert stream.connection is None


async def test_following_a_missing_conversation_raises(server: Server, token: str) -> None:
    async with AsyncClient(server.url, token, retry=FAST) as c:
        with pytest.raises(NotFoundError) as missing:
            async for _ in c.events("no-such-conversation", after_seq=0):
                pass
    assert (missing.value.status, missing.value.code) == (404, "not_found")


async def test_the_token_provider_is_asked_again_when_the_socket_refuses_it(server: Server) -> None:
    good = server.token()
    handed: list[str] = []

    def provider() -> str:  # a plain function works for AsyncClient too
        handed.append("stale" if not handed else good)
        return handed[-1]

    async with AsyncClient(server.url, good, retry=FAST) as writer:
        cid = (await writer.create_conversation(unique("w"))).id
        await writer.append(cid, "user", "one")
    async with AsyncClient(server.url, provider, retry=FAST) as c:
        async with c.events(cid, after_seq=0) as stream:
            event = await anext(stream)
    assert (event.type, event.seq, handed) == ("message.created", 1, ["stale", good])
