"""The EventBus contract: how conversation events reach every subscriber, in this process or in
every instance of a deployment."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager

from chatkeep.models import Event


class SubscriberLagged(Exception):
    """Raised from a subscription whose consumer fell too far behind, or whose transport lost its
    connection: events may have been missed, so its followers resume from the store."""


class EventBus(ABC):
    """Publishes events and delivers them to the subscribers of their tenant.

    Delivery is best effort and at most once: a subscriber that needs every message catches up from
    the store by seq (resume), which is the source of truth. Within one conversation, events are
    delivered in the order they were published.
    """

    @abstractmethod
    async def connect(self) -> None:
        """Open connections; raises `StoreUnavailable` if the transport cannot be reached."""

    @abstractmethod
    async def close(self) -> None:
        """Stop delivery and release connections. Safe to call twice."""

    @abstractmethod
    async def publish(self, event: Event) -> None:
        """Hand the event to every current subscriber of `event.tenant`, here and elsewhere. Returns
        once the event is on its way to every instance (a bus that shares events through a server
        returns once the server has it, or after a short bound while the server is unreachable)."""

    @abstractmethod
    def subscribe(self, tenant: str) -> AbstractAsyncContextManager[AsyncIterator[Event]]:
        """Events of one tenant published from now on, until the context exits (which unsubscribes)."""
