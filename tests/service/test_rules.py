"""Service rules that need no server: rate limits, cursors, identifiers, text, JSON and scoping."""

from __future__ import annotations

import asyncio

import pytest

from chatkeep.errors import Expired, InvalidInput, NotFound, RateLimited, TooLarge
from chatkeep.events.local import LocalEventBus
from chatkeep.models import Conversation, ConversationCursor, Mode, NewMessage, Role, Tenant
from chatkeep.service.auth import Principal
from chatkeep.service.chat import ChatService
from chatkeep.service.cursors import decode_cursor, encode_cursor
from chatkeep.service.lifecycle import Lifetimes
from chatkeep.service.limits import Limits, RateLimiter
from chatkeep.service.routing import StoreRouter
from chatkeep.service.validation import check_id, check_json, check_message, check_tags, check_text
from chatkeep.stores.memory import MemoryStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_limiter_allows_a_burst_then_the_sustained_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=2.0, burst=3, clock=clock)
    for _ in range(3):
        limiter.check("a")
    with pytest.raises(RateLimited) as err:
        limiter.check("a")
    assert err.value.retry_after == pytest.approx(0.5)
    limiter.check("b")  # callers are independent
    clock.now += 0.5
    limiter.check("a")
    with pytest.raises(RateLimited):
        limiter.check("a")
    clock.now += 100  # refills up to the burst, not beyond
    for _ in range(3):
        limiter.check("a")
    with pytest.raises(RateLimited):
        limiter.check("a")


def test_rate_limiter_off_and_bounded_memory() -> None:
    off = RateLimiter(rate=0, burst=1)
    for _ in range(100):
        off.check("a")
    bounded = RateLimiter(rate=1, burst=1, max_callers=10)
    for i in range(100):
        bounded.check(f"caller-{i}")
    assert len(bounded._buckets) == 10


def test_cursor_round_trip_and_rejects() -> None:
    cursor = ConversationCursor(True, 1_700_000_000_000, "c-1")
    token = encode_cursor(cursor)
    assert token is not None and decode_cursor(token) == cursor
    assert encode_cursor(None) is None
    for bad in ("", "!!!", "bnVsbA", "WzIsMSwiYyJd", "WzEsLTEsImMiXQ", "WzEsMSwiYS9iIl0", "x" * 600):
        with pytest.raises(InvalidInput) as err:
            decode_cursor(bad)
        assert err.value.code == "invalid_cursor"


@pytest.mark.parametrize("value", ["a", "A-1", "user@example.com", "x.y+z", "_x", "a" * 128])
def test_ids_that_pass(value: str) -> None:
    assert check_id(value, "id") == value


@pytest.mark.parametrize(
    "value", ["", "-a", ".a", "../etc", "a/b", "a:b", "a b", "a\x00", "{a}", "a" * 129, "é"]
)
def test_ids_that_fail(value: str) -> None:
    with pytest.raises(InvalidInput):
        check_id(value, "id")


def test_text_json_tags_and_message_size() -> None:
    for bad in ("a\x00", "\ud800"):
        with pytest.raises(InvalidInput):
            check_text(bad, "t")
    with pytest.raises(InvalidInput):
        check_text("abc", "t", max_chars=2)
    assert check_tags(["a", "b", "a"]) == ("a", "b")
    for tags in (["x"] * 0 + [str(i) for i in range(21)], ["\n"], [" "]):
        with pytest.raises(InvalidInput):
            check_tags(tags)
    check_json({"a": [1, 2.5, None, True, {"b": "ü"}]}, "m")
    deep: object = 1
    for _ in range(40):
        deep = [deep]
    for bad in ({"a": float("nan")}, {"a": float("inf")}, deep, {"k\x00": 1}, [2**64], {"n": -(2**63) - 1}):
        with pytest.raises(InvalidInput):
            check_json(bad, "m")
    message = NewMessage(id="m", role=Role.USER, content="é" * 10, metadata={"k": "v"})
    assert check_message(message, max_bytes=100) is message
    with pytest.raises(TooLarge):
        check_message(message, max_bytes=25)  # 20 bytes of content + 9 of metadata


def tenant(tid: str = "t") -> Tenant:
    return Tenant(id=tid, name=tid, api_key_hash="h", token_secret="s", created_at=0)


def test_principal_scoping() -> None:
    c = Conversation(tenant="t", id="c", workspace="w", user="u", mode=Mode.DURABLE)
    assert Principal(tenant(), "u", None).sees(c)
    assert Principal(tenant(), None, None).sees(c)
    assert Principal(tenant(), "u", frozenset({"w"})).sees(c)
    assert not Principal(tenant(), "u", frozenset({"x"})).sees(c)
    assert not Principal(tenant(), "v", None).sees(c)
    assert not Principal(tenant("other"), None, None).sees(c)


async def test_an_expired_conversation_is_expired_to_its_owner_and_not_found_to_others() -> None:
    store = MemoryStore()
    service = ChatService(
        StoreRouter(store, MemoryStore(), MemoryStore()), LocalEventBus(), Limits(), Lifetimes()
    )
    await store.create_conversation(
        Conversation(tenant="t", id="c", workspace="w", user="u", mode=Mode.DURABLE, ttl_ms=50)
    )
    await asyncio.sleep(0.1)
    with pytest.raises(Expired):
        await service.get_conversation(Principal(tenant(), "u", None), "c")
    with pytest.raises(Expired):
        await service.get_conversation(Principal(tenant(), None, None), "c")
    for intruder in (Principal(tenant(), "v", None), Principal(tenant(), "u", frozenset({"x"}))):
        with pytest.raises(NotFound) as err:
            await service.get_conversation(intruder, "c")
        assert type(err.value) is NotFound and err.value.code == "not_found"
