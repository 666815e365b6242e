"""The EventBus contract, on every bus: in-process and Redis pub/sub (several buses stand for
several instances)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from chatkeep.events import EventBus, open_bus
from chatkeep.events.local import LocalEventBus, SubscriberLagged
from chatkeep.models import Event, EventType
from tests import services


def event(tenant: str, n: int, kind: EventType = EventType.MESSAGE_CREATED) -> Event:
    return Event(
        type=kind, tenant=tenant, workspace="w", user="u", conversation_id="c", seq=n, data={"n": n, "ü": "✓"}
    )


@pytest.fixture(params=["local", "redis"])
async def buses(request: pytest.FixtureRequest) -> AsyncIterator[tuple[EventBus, EventBus]]:
    """A publishing bus and a subscribing one: the same bus in-process, two instances' over Redis."""
    if request.param == "local":
        bus = LocalEventBus()
        yield bus, bus
        return
    url = f"{services.require_redis()}?prefix=ck-bus-{uuid.uuid4().hex[:8]}"
    first, second = open_bus(url), open_bus(url)
    for bus in (first, second):
        await bus.connect()
    yield first, second
    for bus in (first, second):
        await bus.close()


async def take(stream: AsyncIterator[Event], count: int) -> list[Event]:
    return [await asyncio.wait_for(anext(stream), 5) for _ in range(count)]


async def test_subscribers_of_a_tenant_get_its_events_in_order(buses: tuple[EventBus, EventBus]) -> None:
    publisher, subscriber = buses
    async with (
        subscriber.subscribe("t1") as mine,
        subscriber.subscribe("t1") as also,
        subscriber.subscribe("t2") as other,
    ):
        for n in range(50):
            await publisher.publish(event("t1", n))
        await publisher.publish(event("t2", 99, EventType.CONVERSATION_DELETED))
        for stream in (mine, also):
            received = await take(stream, 50)
            assert [e.seq for e in received] == list(range(50))
            assert received[7] == event("t1", 7)  # every field survives the trip
        (only,) = await take(other, 1)
        assert (only.tenant, only.seq, only.type) == ("t2", 99, EventType.CONVERSATION_DELETED)


async def test_events_before_subscribing_or_after_leaving_are_not_delivered(
    buses: tuple[EventBus, EventBus],
) -> None:
    publisher, subscriber = buses
    await publisher.publish(event("t3", 1))
    await asyncio.sleep(0.1)
    async with subscriber.subscribe("t3") as stream:
        await publisher.publish(event("t3", 2))
        assert [e.seq for e in await take(stream, 1)] == [2]
    async with subscriber.subscribe("t3") as stream:  # a fresh subscription starts empty
        await publisher.publish(event("t3", 3))
        assert [e.seq for e in await take(stream, 1)] == [3]


async def test_a_lagging_subscriber_is_told_to_resume() -> None:
    bus = LocalEventBus()
    async with bus.subscribe("t4") as stream:
        bus.interrupt("t4")
        with pytest.raises(SubscriberLagged):
            await anext(stream)
    assert bus.subscriber_count("t4") == 0
