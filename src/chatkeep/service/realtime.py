"""Real-time delivery on this instance: who follows what, and catching a follower up.

The Hub keeps one event-bus subscription per tenant that has followers here, and hands each event to
the followers of its conversation, and of its workspace (conversation events and new messages only,
what a conversation list needs). Every delivery is checked against the follower's scope again, so a
conversation deleted and re-created under another owner never leaks to the old follower.

A follower that resumes names the last seq it holds in final form; `backlog` reads what came after
from the store, which is the source of truth, while live events are held back and then delivered
without repeating what the backlog already gave.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any, Protocol

from chatkeep.errors import Forbidden, InvalidInput, StoreUnavailable
from chatkeep.events.base import EventBus
from chatkeep.events.local import SubscriberLagged
from chatkeep.models import Conversation, Event, EventType, Message
from chatkeep.service.auth import Principal
from chatkeep.service.conversations import ChatService

log = logging.getLogger("chatkeep.realtime")
MAX_BACKLOG = 5_000
START_TIMEOUT = 15.0
LIST_EVENTS = {
    EventType.CONVERSATION_CREATED,
    EventType.CONVERSATION_UPDATED,
    EventType.CONVERSATION_DELETED,
    EventType.CONVERSATION_EXPIRED,
    EventType.MESSAGE_CREATED,
}


class Follower(Protocol):
    """A connection that receives events. `deliver` must not block: a follower that cannot keep up
    ends itself."""

    principal: Principal

    def deliver(self, event: Event) -> None: ...

    def interrupted(self) -> None:
        """Events may have been missed (the bus lost its connection): the follower should resume."""


class Hub:
    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self._conversations: dict[tuple[str, str], set[Follower]] = defaultdict(set)
        self._workspaces: dict[tuple[str, str | None], set[Follower]] = defaultdict(set)
        self._members: dict[str, set[Follower]] = defaultdict(set)
        # What each follower follows, so that leaving costs what it followed, not what everyone does.
        self._interests: dict[Follower, set[tuple[str, str]]] = defaultdict(set)
        self._pumps: dict[str, asyncio.Task[None]] = {}

    def followers(self, tenant: str) -> int:
        return len(self._members.get(tenant, ()))

    @contextlib.asynccontextmanager
    async def attached(self, follower: Follower) -> AsyncIterator[None]:
        """Membership for a connection's lifetime; leaving drops every interest it registered."""
        tenant = follower.principal.tenant.id
        self._members[tenant].add(follower)
        if tenant not in self._pumps:
            started = asyncio.Event()
            self._pumps[tenant] = asyncio.create_task(
                self._pump(tenant, started), name=f"chatkeep-hub-{tenant}"
            )
            try:
                await asyncio.wait_for(started.wait(), START_TIMEOUT)
            except TimeoutError:
                self._detach(follower)
                raise StoreUnavailable("the event bus cannot be reached; try again shortly") from None
        try:
            yield
        finally:
            self._detach(follower)

    def _detach(self, follower: Follower) -> None:
        tenant = follower.principal.tenant.id
        for kind, name in self._interests.pop(follower, ()):
            if kind == "conversation":
                _discard(self._conversations, (tenant, name), follower)
            else:
                _discard(self._workspaces, (tenant, name or None), follower)
        members = self._members.get(tenant)
        if members is not None:
            members.discard(follower)
            if not members:
                del self._members[tenant]
                pump = self._pumps.pop(tenant, None)
                if pump is not None:
                    pump.cancel()

    def follow_conversation(self, follower: Follower, conversation_id: str) -> None:
        self._conversations[(follower.principal.tenant.id, conversation_id)].add(follower)
        self._interests[follower].add(("conversation", conversation_id))

    def unfollow_conversation(self, follower: Follower, conversation_id: str) -> None:
        _discard(self._conversations, (follower.principal.tenant.id, conversation_id), follower)
        self._interests.get(follower, set()).discard(("conversation", conversation_id))

    def follow_workspace(self, follower: Follower, workspace: str | None) -> None:
        """Conversation events of a workspace (None: every workspace the caller may see)."""
        p = follower.principal
        if workspace is None and p.workspaces is not None:
            raise Forbidden("this token does not reach every workspace; name one", code="workspace_forbidden")
        if workspace is not None and not p.may_use_workspace(workspace):
            raise Forbidden(f"this token does not allow workspace {workspace!r}", code="workspace_forbidden")
        self._workspaces[(p.tenant.id, workspace)].add(follower)
        self._interests[follower].add(("workspace", workspace or ""))

    def unfollow_workspace(self, follower: Follower, workspace: str | None) -> None:
        _discard(self._workspaces, (follower.principal.tenant.id, workspace), follower)
        self._interests.get(follower, set()).discard(("workspace", workspace or ""))

    async def _pump(self, tenant: str, started: asyncio.Event) -> None:
        """Follow the tenant's events until cancelled, whatever the bus does meanwhile."""
        while True:
            try:
                async with self._bus.subscribe(tenant) as stream:
                    started.set()
                    async for event in stream:
                        self._dispatch(event)
            except SubscriberLagged:
                log.warning("events for tenant %s were dropped; followers must resume", tenant)
            except Exception:
                log.exception("following the events of tenant %s failed; retrying", tenant)
                await asyncio.sleep(1.0)
            for follower in list(self._members.get(tenant, ())):
                follower.interrupted()

    def _dispatch(self, event: Event) -> None:
        targets = set(self._conversations.get((event.tenant, event.conversation_id), ()))
        if event.type in LIST_EVENTS:
            targets |= self._workspaces.get((event.tenant, event.workspace), set())
            targets |= self._workspaces.get((event.tenant, None), set())
        for follower in targets:
            if follower.principal.scope.admits(event.user, event.workspace):
                follower.deliver(event)


def _discard(index: dict[Any, set[Follower]], key: Any, follower: Follower) -> None:
    """Take a follower out of one entry of an index, dropping the entry when it empties."""
    followers = index.get(key)
    if followers is not None:
        followers.discard(follower)
        if not followers:
            del index[key]


async def backlog(
    chat: ChatService, p: Principal, conversation_id: str, after_seq: int
) -> tuple[Conversation, list[Message]]:
    """The conversation and its messages with seq above `after_seq`, oldest first. A follower too far
    behind (more than MAX_BACKLOG) is told to reload instead (code `too_far_behind`)."""
    conversation = await chat.get_conversation(p, conversation_id)
    if conversation.last_seq - max(after_seq, conversation.first_seq - 1) > MAX_BACKLOG:
        raise InvalidInput(
            f"more than {MAX_BACKLOG} messages to catch up; reload the conversation over REST",
            code="too_far_behind",
        )
    found: list[Message] = []
    cursor = after_seq
    while True:
        page = await chat.read_messages(p, conversation_id, after=cursor, limit=chat.limits.max_page_size)
        found += page.messages
        if not page.has_more or not page.messages:
            return conversation, found
        cursor = page.messages[-1].seq
