"""One conversation followed on this instance: every follower gets each of its messages once, in seq
order, with no gap, however the events arrive.

Events reach an instance in the order their writers published them, which is not always seq order:
two appends of a conversation commit in one order and may publish in the other, and with several
instances each publishes on its own. An event may also be missing (the bus dropped it) or repeated.
So a channel keeps `seq`: every message up to it has gone to every member, in order. A
`message.created` with the next seq goes out at once; a later one waits, with the delta and update
events of its message, until the missing ones arrive, and if they have not after GAP_WAIT the channel
reads them from the store (the source of truth) and goes on. One at or below `seq` is dropped.

A follower whose position differs from `seq` is not a member but has a Place: one that resumes from
further back reads its backlog from the store in pages, a message at a time as its connection drains,
while the events for it are held; then it is told it is subscribed, gets what was held, and joins.
One that is ahead (it read the conversation more recently than the channel heard of it) joins when
the channel reaches it. Deltas and updates of a message go only to followers that hold the message;
a client applies deltas at their offsets, so one it has already seen changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator

from chatkeep.codec import Frame
from chatkeep.errors import ChatkeepError, NotFound
from chatkeep.models import Conversation, Event, EventType
from chatkeep.service.events import created_event, event_frame
from chatkeep.service.realtime.followers import Follower, Place, Ready, Source

log = logging.getLogger("chatkeep.realtime")
GAP_WAIT = 0.25  # seconds a message past a gap waits for the missing ones before they are read
MAX_HELD = 10_000  # events held for a channel or a follower before its followers must resume instead
CREATED = EventType.MESSAGE_CREATED
MESSAGE_EVENTS = frozenset({EventType.MESSAGE_CREATED, EventType.MESSAGE_DELTA, EventType.MESSAGE_UPDATED})
RESETS = frozenset({EventType.CONVERSATION_DELETED, EventType.CONVERSATION_EXPIRED})


class Channel:
    def __init__(
        self,
        tenant: str,
        conversation_id: str,
        source: Source,
        *,
        page_size: int,
        on_drop: Callable[[Follower], None],
        gap_wait: float = GAP_WAIT,
    ) -> None:
        self.tenant = tenant
        self.conversation_id = conversation_id
        self.seq: int | None = None  # None until a follower's read says where the conversation is
        self.owner: tuple[str, str] | None = None
        self.members: set[Follower] = set()
        self.places: dict[Follower, Place] = {}
        self._source = source
        self._page_size = page_size
        self._on_drop = on_drop
        self._gap_wait = gap_wait
        # Events of messages past `seq`, by message seq; a `message.created` first when it has come.
        self._pending: dict[int, list[tuple[EventType, Frame]]] = {}
        self._known = 0  # the highest seq a follower or an event says exists
        self._timer: asyncio.TimerHandle | None = None
        self._filling: asyncio.Task[None] | None = None

    # -- followers ------------------------------------------------------------------------------

    def followers(self) -> Iterator[Follower]:
        yield from self.members
        yield from self.places

    def __contains__(self, follower: object) -> bool:
        return follower in self.members or follower in self.places

    @property
    def empty(self) -> bool:
        return not self.members and not self.places

    def add(self, follower: Follower, seq: int) -> Place:
        """Register a follower before its first read, so that nothing published meanwhile is lost."""
        self.remove(follower)
        place = self.places[follower] = Place(seq)
        return place

    def remove(self, follower: Follower) -> None:
        self.members.discard(follower)
        place = self.places.pop(follower, None)
        if place is not None and place.task is not None and place.task is not asyncio.current_task():
            place.task.cancel()

    def start(self, conversation: Conversation) -> None:
        """The first read of the conversation tells where the channel starts."""
        if self.seq is None:
            self.seq = conversation.last_seq
            self.owner = (conversation.user, conversation.workspace)
            self._settle()

    def exists(self, seq: int) -> None:
        """A read saw the conversation at `seq`: if the channel is behind, an event was lost (or is on
        its way); what has not come by GAP_WAIT is read from the store."""
        if seq > self._known:
            self._known = seq
            self._arm()

    def close(self) -> None:
        self._disarm()
        if self._filling is not None:
            self._filling.cancel()
        for follower in list(self.places):
            self.remove(follower)
        self.members.clear()

    async def catch_up(
        self, follower: Follower, place: Place, conversation: Conversation, ready: Ready
    ) -> None:
        """Send a follower the messages after its place, from the store, as its connection drains;
        then `ready(last_seq, replayed)`, what was held for it, and membership."""
        replayed = 0
        # Until the follower holds what the channel has sent. Every message up to `seq` was stored
        # before the channel heard of it, so a read started now has them (an empty page: they are gone).
        while self.seq is not None and place.seq < self.seq:
            page = await self._source.read_messages(
                follower.principal, self.conversation_id, after=place.seq, limit=self._page_size
            )
            if not page.messages:
                break
            for message in page.messages:
                if message.seq <= place.seq:
                    continue
                await follower.drained()
                if self.places.get(follower) is not place:
                    return
                follower.send(event_frame(created_event(conversation, message)))
                place.seq = message.seq
                replayed += 1
        ready(place.seq, replayed)
        self.join(follower, place)

    def join(self, follower: Follower, place: Place) -> None:
        """A follower's backlog is sent: it gets what was held for it and then live events."""
        place.catching_up = False
        held, place.held = place.held, []
        if self.seq is None or place.seq > self.seq:
            self._known = max(self._known, place.seq)
            self._arm()
        else:  # at seq (or behind it only by messages the store no longer has)
            del self.places[follower]
            self.members.add(follower)
        for frame in held:
            follower.send(frame)

    # -- events ---------------------------------------------------------------------------------

    def dispatch(self, event: Event, frame: Frame) -> None:
        kind = event.type
        if not self._admit(event):
            return
        if kind in RESETS:
            self._to_everyone(frame)
            self._reset()
            return
        if kind not in MESSAGE_EVENTS:  # conversation.created / updated
            self._to_everyone(frame)
            return
        seq = event.seq or 0
        if self.seq is not None and seq <= self.seq:
            if kind is not CREATED:
                self._to_everyone(frame)
            return  # a message already delivered
        if kind is CREATED and self.seq is not None and seq == self.seq + 1:
            self._advance(frame, seq)
            if self._pending:
                self._settle()
            return
        self._hold(kind, seq, frame)

    def _admit(self, event: Event) -> bool:
        """Check followers against a new owner (the conversation was deleted and created again by
        someone else): those who may not see it leave the channel."""
        owner = (event.user, event.workspace)
        if owner == self.owner:
            return True
        self.owner = owner
        for follower in list(self.followers()):
            if not follower.principal.scope.admits(*owner):
                self.remove(follower)
                self._on_drop(follower)
        return not self.empty

    def _advance(self, frame: Frame, seq: int) -> None:
        self.seq = seq
        for follower in self.members:
            follower.send(frame)
        if self.places:
            self._promote()

    def _promote(self) -> None:
        """Followers ahead of the channel become members once it reaches them (before the next
        message goes out, which they do not hold)."""
        assert self.seq is not None
        for follower, place in list(self.places.items()):
            if not place.catching_up and place.seq <= self.seq:
                del self.places[follower]
                self.members.add(follower)

    def _to_everyone(self, frame: Frame) -> None:
        """Members and followers ahead get it now; one catching up once its backlog is sent (a
        delta or update only ever comes here for a message that every member holds)."""
        for follower in self.members:
            follower.send(frame)
        for follower, place in list(self.places.items()):
            self._to_place(follower, place, frame)

    def _to_place(self, follower: Follower, place: Place, frame: Frame) -> None:
        if not place.catching_up:
            follower.send(frame)
            return
        place.held.append(frame)
        if len(place.held) > MAX_HELD:
            self.remove(follower)
            self._on_drop(follower)
            follower.lagging()

    def _hold(self, kind: EventType, seq: int, frame: Frame) -> None:
        waiting = self._pending.setdefault(seq, [])
        if kind is CREATED:
            if waiting and waiting[0][0] is CREATED:
                return  # the same message twice while it waits
            waiting.insert(0, (kind, frame))
        else:
            waiting.append((kind, frame))
        self._known = max(self._known, seq)
        if sum(len(w) for w in self._pending.values()) > MAX_HELD:
            log.warning("conversation %s: too many events past a gap; followers resume", self.conversation_id)
            for follower in list(self.followers()):
                follower.interrupted()
            self._pending.clear()
            return
        self._arm()

    def _settle(self) -> None:
        """Deliver whatever waited and can now go, in seq order; promote followers the channel has
        reached; keep the gap timer only while a gap remains."""
        if self.seq is None:
            return
        for seq in [s for s in self._pending if s <= self.seq]:
            for kind, frame in self._pending.pop(seq):
                if kind is not CREATED:
                    self._to_everyone(frame)
        while (waiting := self._pending.get(self.seq + 1)) is not None and waiting[0][0] is CREATED:
            del self._pending[self.seq + 1]
            self._advance(waiting[0][1], self.seq + 1)
            for _, frame in waiting[1:]:
                self._to_everyone(frame)
        self._promote()
        if self._gap():
            self._arm()
        else:
            self._disarm()

    def _reset(self) -> None:
        """The conversation is gone: a new one of the same id would start from seq 0."""
        self.seq = 0
        self.owner = None
        self._pending.clear()
        self._known = 0
        self._disarm()
        for follower, place in list(self.places.items()):
            if not place.catching_up:
                del self.places[follower]
                self.members.add(follower)

    # -- filling a gap from the store -------------------------------------------------------------

    def _gap(self) -> bool:
        return self.seq is not None and (bool(self._pending) or self._known > self.seq)

    def _arm(self) -> None:
        if self._timer is None and self._filling is None and self._gap():
            self._timer = asyncio.get_running_loop().call_later(self._gap_wait, self._start_fill)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _start_fill(self) -> None:
        self._timer = None
        if self._gap() and self._filling is None:
            self._filling = asyncio.get_running_loop().create_task(
                self._fill(), name=f"chatkeep-gap-{self.conversation_id}"
            )

    async def _fill(self) -> None:
        retry = False
        try:
            while self._gap() and self.seq is not None:
                reader = next(self.followers(), None)
                if reader is None:
                    return
                target = self._known
                if self._pending:
                    first = min(self._pending)
                    target = first - 1 if self._pending[first][0][0] is CREATED else first
                p = reader.principal
                conversation = await self._source.get_conversation(p, self.conversation_id)
                page = await self._source.read_messages(
                    p, self.conversation_id, after=self.seq, before=target + 1, limit=self._page_size
                )
                if self.seq is None:
                    return
                if not page.messages or page.messages[0].seq > self.seq + 1:
                    # The store no longer has them (trimmed): go on from what it has.
                    self.seq = max(self.seq, (page.messages[0].seq - 1) if page.messages else target)
                    self._settle()
                for message in page.messages:
                    event = created_event(conversation, message)
                    self.dispatch(event, event_frame(event))
        except NotFound:  # the conversation is gone: nothing past the gap will come
            self._pending.clear()
            self._known = self.seq or 0
            self._settle()
        except ChatkeepError as exc:
            log.warning("conversation %s: cannot fill a gap yet (%s)", self.conversation_id, exc.code)
            retry = True
        finally:
            self._filling = None
        if retry:
            with contextlib.suppress(RuntimeError):
                self._arm()
