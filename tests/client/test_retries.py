"""Retries through a real local proxy that answers 503 and 429 or loses answers on purpose, with
chatkeep behind it: a message sent again keeps its id and is stored once."""

from __future__ import annotations

import time

import pytest

from chatkeep.client import (
    AsyncClient,
    ChatkeepConnectionError,
    Client,
    NewMessage,
    RateLimitedError,
    RetryPolicy,
    UnavailableError,
)
from tests.client.conftest import FAST, Server
from tests.client.proxy import flaky_proxy
from tests.conftest import unique


async def test_appends_are_sent_again_with_the_same_id_and_stored_once(server: Server, token: str) -> None:
    async with AsyncClient(server.url, token) as direct:
        cid = (await direct.create_conversation(unique("w"))).id
        with flaky_proxy(server.url, ["503", "503", "pass"]) as proxy:
            async with AsyncClient(proxy.url, token, retry=FAST) as c:
                result = await c.append(cid, "user", "once")
        assert [s.step for s in proxy.seen] == ["503", "503", "pass"]
        assert {b["id"] for b in proxy.bodies()} == {result.message.id}
        assert result.created and result.message.seq == 1

        with (
            flaky_proxy(server.url, ["drop", "drop", "pass"]) as proxy,
            Client(proxy.url, token, retry=FAST) as s,
        ):
            lost = s.append(cid, "assistant", "answer lost twice")
        # chatkeep stored it at the first attempt; the retries were answered with the stored one
        assert [s.step for s in proxy.seen] == ["drop", "drop", "pass"]
        assert {b["id"] for b in proxy.bodies()} == {lost.message.id}
        assert (lost.created, lost.message.seq) == (False, 2)

        page = await direct.list_messages(cid)
        assert [(m.seq, m.id, m.content) for m in page.messages] == [
            (1, result.message.id, "once"),
            (2, lost.message.id, "answer lost twice"),
        ]


async def test_batches_and_creates_are_sent_again_safely(server: Server, token: str) -> None:
    with flaky_proxy(server.url, ["drop", "pass", "drop", "pass"]) as proxy:
        async with AsyncClient(proxy.url, token, retry=FAST) as c:
            made = await c.create_conversation(unique("w"), title="retried")
            batch = await c.append_batch(made.id, [NewMessage("user", "a"), NewMessage("user", "b")])
    creates, batches = proxy.bodies()[:2], proxy.bodies()[2:]
    assert creates[0] == creates[1] and creates[0]["id"] == made.id
    assert batches[0] == batches[1]
    assert [(r.created, r.message.seq) for r in batch.results] == [(False, 1), (False, 2)]


async def test_429_waits_as_long_as_retry_after_says(server: Server, token: str) -> None:
    async with AsyncClient(server.url, token) as direct:
        cid = (await direct.create_conversation(unique("w"))).id
    with flaky_proxy(server.url, ["429", "pass"]) as proxy:
        async with AsyncClient(proxy.url, token, retry=FAST) as c:
            started = time.monotonic()
            result = await c.append(cid, "user", "later")
            waited = time.monotonic() - started
    assert 1.0 <= waited < 5.0
    assert [s.step for s in proxy.seen] == ["429", "pass"] and result.created


async def test_attempts_are_bounded(server: Server, token: str) -> None:
    policy = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02)
    with flaky_proxy(server.url, ["503"] * 10) as proxy:
        async with AsyncClient(proxy.url, token, retry=policy) as c:
            with pytest.raises(UnavailableError) as failed:
                await c.list_conversations()
    assert (len(proxy.seen), failed.value.status, failed.value.detail) == (3, 503, "planned 503")

    short = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02, max_retry_after=0.5)
    with flaky_proxy(server.url, ["429"] * 3) as proxy, Client(proxy.url, token, retry=short) as s:
        with pytest.raises(RateLimitedError) as limited:
            s.list_conversations()
    # Retry-After (1 s) is longer than this policy waits: the first 429 is the answer
    assert (len(proxy.seen), limited.value.retry_after) == (1, 1.0)


async def test_an_edit_is_not_sent_again_once_it_may_have_been_applied(server: Server, token: str) -> None:
    async with AsyncClient(server.url, token) as direct:
        made = await direct.create_conversation(unique("w"))
        with flaky_proxy(server.url, ["drop", "503"]) as proxy:
            async with AsyncClient(proxy.url, token, retry=FAST) as c:
                with pytest.raises(ChatkeepConnectionError):
                    await c.update_conversation(made.id, made.version, title="applied, answer lost")
                with pytest.raises(UnavailableError):
                    await c.update_conversation(made.id, made.version + 1, title="refused")
        assert len(proxy.seen) == 2
        loaded = await direct.get_conversation(made.id)
        assert (loaded.conversation.title, loaded.conversation.version) == ("applied, answer lost", 2)


async def test_a_streamed_reply_survives_lost_answers(server: Server, token: str) -> None:
    async with AsyncClient(server.url, token) as direct:
        cid = (await direct.create_conversation(unique("w"))).id
        # open, delta, delta (lost), delta (retry), delta (lost), delta (retry), finish (lost), finish
        plan = ["pass", "pass", "drop", "pass", "drop", "pass", "drop", "pass"]
        with flaky_proxy(server.url, plan) as proxy:
            async with AsyncClient(proxy.url, token, retry=FAST) as c:
                async with c.stream_reply(cid) as reply:
                    for piece in ("Hel", "lo, ", "world"):
                        await reply.send(piece)
        deltas = [b for s, b in zip(proxy.seen, proxy.bodies(), strict=True) if s.path.endswith("/deltas")]
        assert deltas == [
            {"text": "Hel", "offset": 0},
            {"text": "lo, ", "offset": 3},
            {"text": "lo, ", "offset": 3},
            {"text": "world", "offset": 7},
            {"text": "world", "offset": 7},
        ]
        stored = (await direct.list_messages(cid)).messages
        assert [(m.id, m.content, m.status.value) for m in stored] == [(reply.id, "Hello, world", "complete")]
        assert reply.message is not None and reply.message.content == "Hello, world"
