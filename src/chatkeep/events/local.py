"""LocalEventBus: delivery inside one process."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import cast

from chatkeep.events.base import EventBus, SubscriberLagged
from chatkeep.models import Event

# Events a subscriber may fall behind by before it is cut off (it then resumes from the store).
QUEUE_SIZE = 10_000


_LAGGED = object()


class LocalEventBus(EventBus):
    def __init__(self) -> None:
        self._queues: dict[str, set[asyncio.Queue[object]]] = defaultdict(set)

    async def connect(self) -> None:
        pass

    async def close(self) -> None:
        self._queues.clear()

    async def publish(self, event: Event) -> None:
        self.deliver(event)

    def deliver(self, event: Event) -> None:
        """Put an event on every local subscriber's queue (also used by the Redis bus)."""
        for queue in tuple(self._queues.get(event.tenant, ())):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                # Never block the publisher on a slow consumer: mark it lagged and let it resume.
                _drain(queue)
                queue.put_nowait(_LAGGED)

    def interrupt(self, tenant: str) -> None:
        """Tell the tenant's subscribers that events may have been lost (each raises SubscriberLagged)."""
        for queue in tuple(self._queues.get(tenant, ())):
            _drain(queue)
            queue.put_nowait(_LAGGED)

    def subscriber_count(self, tenant: str) -> int:
        return len(self._queues.get(tenant, ()))

    @contextlib.asynccontextmanager
    async def subscribe(self, tenant: str) -> AsyncIterator[AsyncIterator[Event]]:
        queue: asyncio.Queue[object] = asyncio.Queue(QUEUE_SIZE)
        self._queues[tenant].add(queue)
        try:
            yield _events(queue)
        finally:
            subscribers = self._queues.get(tenant)
            if subscribers is not None:
                subscribers.discard(queue)
                if not subscribers:
                    del self._queues[tenant]


async def _events(queue: asyncio.Queue[object]) -> AsyncIterator[Event]:
    while True:
        item = await queue.get()
        if item is _LAGGED:
            raise SubscriberLagged("subscriber fell behind")
        yield cast(Event, item)


def _drain(queue: asyncio.Queue[object]) -> None:
    while not queue.empty():
        queue.get_nowait()
