"""The Hub: who follows what on this instance, and each event handed to them once.

It keeps one event-bus subscription per tenant that has followers here. An event is encoded once
(one Frame, the same bytes for every connection) and goes to the Channel of its conversation, which
orders message events per follower (see channel), and to the followers of its workspace (conversation
events and new messages, what a conversation list needs; best effort, no ordering promise). A
connection that follows a conversation and its workspace gets the conversation's events once, through
the channel. Every delivery is checked against the follower's scope.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import Any

from chatkeep import tasks
from chatkeep.codec import Frame
from chatkeep.domain import errors
from chatkeep.errors import Forbidden, InvalidInput, StoreUnavailable
from chatkeep.events.base import EventBus, SubscriberLagged
from chatkeep.models import Conversation, Event, EventType
from chatkeep.service.events import event_frame
from chatkeep.service.realtime.channel import GAP_WAIT, Channel
from chatkeep.service.realtime.followers import Follower, Place, Ready, Source
from chatkeep.service.realtime.quotas import SocketQuotas

log = logging.getLogger("chatkeep.realtime")
MAX_BACKLOG = 5_000
START_TIMEOUT = 15.0
LIST_EVENTS = frozenset(
    {
        EventType.CONVERSATION_CREATED,
        EventType.CONVERSATION_UPDATED,
        EventType.CONVERSATION_DELETED,
        EventType.CONVERSATION_EXPIRED,
        EventType.MESSAGE_CREATED,
    }
)
Interest = tuple[str, str]  # ("conversation", id) or ("workspace", name or "")


class Hub:
    def __init__(
        self,
        bus: EventBus,
        source: Source,
        *,
        page_size: int = 200,
        gap_wait: float = GAP_WAIT,
        quotas: SocketQuotas | None = None,
    ) -> None:
        self._bus = bus
        self.quotas = quotas or SocketQuotas()
        self._source = source
        self._page_size = page_size
        self._gap_wait = gap_wait
        self._channels: dict[tuple[str, str], Channel] = {}
        self._workspaces: dict[tuple[str, str | None], set[Follower]] = defaultdict(set)
        self._members: dict[str, set[Follower]] = defaultdict(set)
        # What each follower follows, so that leaving costs what it followed, not what everyone does.
        self._interests: dict[Follower, set[Interest]] = defaultdict(set)
        self._pumps: dict[str, asyncio.Task[None]] = {}

    def followers(self, tenant: str) -> int:
        return len(self._members.get(tenant, ()))

    def members(self, tenant: str) -> list[Follower]:
        return list(self._members.get(tenant, ()))

    @property
    def channels(self) -> int:
        return len(self._channels)

    async def attach(self, follower: Follower) -> None:
        """Make a connection a member of its tenant here (following the tenant's events if it is the
        first). Every attach is paired with a `detach` when the connection ends. Raises
        StoreUnavailable, attaching nothing, when the event bus cannot be reached, and QuotaExceeded
        (`too_many_sockets`) when the caller holds as many sockets as it may."""
        self.quotas.open(follower.principal)
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
                self.detach(follower)
                raise StoreUnavailable(
                    "the event bus cannot be reached; try again shortly",
                    public="the event bus cannot be reached; try again shortly",
                ) from None

    async def close(self) -> None:
        """Stop following every tenant's events (the service is stopping)."""
        pumps = list(self._pumps.values())
        self._pumps.clear()
        for pump in pumps:
            await tasks.stop(pump)
        for channel in self._channels.values():
            channel.close()
        self._channels.clear()

    def detach(self, follower: Follower) -> None:
        """Leave: drops every interest the connection registered, and costs only what it followed."""
        tenant = follower.principal.tenant.id
        for kind, name in self._interests.pop(follower, ()):
            if kind == "conversation":
                self._leave_channel(follower, tenant, name)
            else:
                _discard(self._workspaces, (tenant, name or None), follower)
        members = self._members.get(tenant)
        if members is not None and follower in members:
            self.quotas.close(follower.principal)
            members.discard(follower)
            if not members:
                del self._members[tenant]
                pump = self._pumps.pop(tenant, None)
                if pump is not None:
                    pump.cancel()

    # -- conversations ----------------------------------------------------------------------------

    async def follow_conversation(
        self, follower: Follower, conversation_id: str, after_seq: int | None, ready: Ready
    ) -> None:
        """Follow a conversation from `after_seq` (None: from now). Raises what reading the
        conversation raises (NotFound for one the follower may not see, and `too_far_behind`) and
        changes nothing then. Otherwise the messages after `after_seq` are sent from the store as the
        follower drains, then `ready(last_seq, replayed)` is called, then live events follow: each
        message once, in seq order, with no gap."""
        p = follower.principal
        self._check_subscription(follower, ("conversation", conversation_id))
        key = (p.tenant.id, conversation_id)
        channel = self._channels.get(key)
        if channel is None:
            channel = self._channels[key] = Channel(
                p.tenant.id,
                conversation_id,
                self._source,
                page_size=self._page_size,
                on_drop=lambda f: self._interests.get(f, set()).discard(("conversation", conversation_id)),
                gap_wait=self._gap_wait,
            )
        place = channel.add(follower, after_seq or 0)
        self._interests[follower].add(("conversation", conversation_id))
        try:
            conversation = await self._source.get_conversation(p, conversation_id)
            if channel.places.get(follower) is not place:
                raise errors.conversation_not_found(conversation_id)
            last = conversation.last_seq
            start = last if after_seq is None else min(after_seq, last)
            if last - max(start, conversation.first_seq - 1) > MAX_BACKLOG:
                raise InvalidInput(
                    f"more than {MAX_BACKLOG} messages to catch up; reload the conversation over REST",
                    code="too_far_behind",
                )
        except BaseException:
            self.unfollow_conversation(follower, conversation_id)
            raise
        channel.start(conversation)
        channel.exists(last)
        place.seq = start
        assert channel.seq is not None
        if start >= channel.seq:
            ready(start, 0)
            channel.join(follower, place)
            return
        place.task = asyncio.get_running_loop().create_task(
            self._catch_up(channel, follower, place, conversation, ready),
            name=f"chatkeep-catch-up-{conversation_id}",
        )

    async def _catch_up(
        self, channel: Channel, follower: Follower, place: Place, conversation: Conversation, ready: Ready
    ) -> None:
        try:
            await channel.catch_up(follower, place, conversation, ready)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the store failed or the conversation went away meanwhile
            self.unfollow_conversation(follower, channel.conversation_id)
            follower.failed(channel.conversation_id, exc)

    def unfollow_conversation(self, follower: Follower, conversation_id: str) -> None:
        self._interests.get(follower, set()).discard(("conversation", conversation_id))
        self._leave_channel(follower, follower.principal.tenant.id, conversation_id)

    def _leave_channel(self, follower: Follower, tenant: str, conversation_id: str) -> None:
        channel = self._channels.get((tenant, conversation_id))
        if channel is not None:
            channel.remove(follower)
            if channel.empty:
                channel.close()
                del self._channels[(tenant, conversation_id)]

    # -- workspaces -------------------------------------------------------------------------------

    def follow_workspace(self, follower: Follower, workspace: str | None) -> None:
        """Conversation events of a workspace (None: every workspace the caller may see)."""
        p = follower.principal
        if workspace is None and p.workspaces is not None:
            raise Forbidden("this token does not reach every workspace; name one", code="workspace_forbidden")
        if workspace is not None and not p.may_use_workspace(workspace):
            raise Forbidden(f"this token does not allow workspace {workspace!r}", code="workspace_forbidden")
        self._check_subscription(follower, ("workspace", workspace or ""))
        self._workspaces[(p.tenant.id, workspace)].add(follower)
        self._interests[follower].add(("workspace", workspace or ""))

    def unfollow_workspace(self, follower: Follower, workspace: str | None) -> None:
        _discard(self._workspaces, (follower.principal.tenant.id, workspace), follower)
        self._interests.get(follower, set()).discard(("workspace", workspace or ""))

    def _check_subscription(self, follower: Follower, interest: Interest) -> None:
        held = self._interests.get(follower, ())
        if interest not in held:
            self.quotas.check_subscription(len(held))

    # -- events -----------------------------------------------------------------------------------

    async def _pump(self, tenant: str, started: asyncio.Event) -> None:
        """Follow the tenant's events until cancelled, whatever the bus does meanwhile."""
        while not tasks.stopping():
            try:
                async with self._bus.subscribe(tenant) as stream:
                    started.set()
                    async for event in stream:
                        self.dispatch(event)
            except SubscriberLagged:
                log.warning("events for tenant %s were dropped; followers must resume", tenant)
            except Exception:
                log.exception("following the events of tenant %s failed; retrying", tenant)
                await asyncio.sleep(1.0)
            for follower in list(self._members.get(tenant, ())):
                follower.interrupted()

    def dispatch(self, event: Event) -> None:
        """Hand one event to its conversation's channel and to the followers of its workspace."""
        frame: Frame | None = None
        channel = self._channels.get((event.tenant, event.conversation_id))
        if channel is not None:
            frame = event_frame(event)
            channel.dispatch(event, frame)
            if channel.empty:  # every follower was dropped (the conversation changed hands)
                channel.close()
                del self._channels[(event.tenant, event.conversation_id)]
        if event.type not in LIST_EVENTS:
            return
        for key in ((event.tenant, event.workspace), (event.tenant, None)):
            for follower in self._workspaces.get(key, ()):
                if channel is not None and follower in channel:
                    continue
                if follower.principal.scope.admits(event.user, event.workspace):
                    if frame is None:
                        frame = event_frame(event)
                    follower.send(frame)


def _discard(index: dict[Any, set[Follower]], key: Any, follower: Follower) -> None:
    """Take a follower out of one entry of an index, dropping the entry when it empties."""
    followers = index.get(key)
    if followers is not None:
        followers.discard(follower)
        if not followers:
            del index[key]
