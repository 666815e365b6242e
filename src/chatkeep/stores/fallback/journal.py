"""The journal: writes acknowledged while Redis was unreachable, one lane per conversation, in the
order they were acknowledged, each with the scope of its caller. It holds at most a byte budget,
and a tenant at most its share of it; a write past either is refused, never dropped later."""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Set
from dataclasses import dataclass, field

import orjson

from chatkeep.errors import StoreUnavailable
from chatkeep.models import Conversation, NewMessage
from chatkeep.stores import requests
from chatkeep.stores.fallback.knowledge import Key

OVERHEAD = 128  # bytes counted for an entry besides what it carries


@dataclass(frozen=True, slots=True)
class Create:
    conversation: Conversation  # as acknowledged

    @property
    def size(self) -> int:
        c = self.conversation
        return OVERHEAD + len(c.id) + len(c.title.encode()) + sum(len(t) for t in c.tags)


@dataclass(frozen=True, slots=True)
class Append:
    request: requests.Append  # with the messages this write stored (not those it answered as held)
    acked: dict[str, int]  # id -> seq acknowledged, for the messages this write created

    @property
    def size(self) -> int:
        return sum(message_size(m) for m in self.request.messages)


@dataclass(frozen=True, slots=True)
class Patch:
    request: requests.Update  # its expected version as the caller sent it
    version_after: int  # the version acknowledged

    @property
    def size(self) -> int:
        p = self.request.patch
        return OVERHEAD + len((p.title or "").encode()) + sum(len(t) for t in p.tags or ())


@dataclass(frozen=True, slots=True)
class Touch:
    ref: requests.Ref
    size: int = OVERHEAD


@dataclass(frozen=True, slots=True)
class Delete:
    ref: requests.Ref
    size: int = OVERHEAD


@dataclass(frozen=True, slots=True)
class Extend:
    request: requests.Extend  # what this write added, at the offset it was added at

    @property
    def size(self) -> int:
        return OVERHEAD + len(self.request.text.encode())


@dataclass(frozen=True, slots=True)
class Finish:
    request: requests.Finish
    size: int = OVERHEAD


Entry = Create | Append | Patch | Touch | Delete | Extend | Finish


def message_size(m: NewMessage) -> int:
    extra = 0
    if m.parts is not None:
        extra += len(orjson.dumps(m.parts))
    if m.metadata is not None:
        extra += len(orjson.dumps(m.metadata))
    return OVERHEAD + len(m.id) + len(m.content.encode()) + extra


@dataclass(eq=False)
class Lane:
    """The pending writes of one conversation. `base` is the conversation as Redis held it when
    the first of them was acknowledged (None when it was created during the outage)."""

    key: Key
    base: Conversation | None
    order: int
    entries: deque[Entry] = field(default_factory=deque)
    # message id -> (seq, created_at) of messages Redis held at `base` that this instance remembers
    recent: dict[str, tuple[int, int]] = field(default_factory=dict)
    drained: asyncio.Event = field(default_factory=asyncio.Event)
    waiters: int = 0
    # Set once the replay compared Redis' state with `base`; `moved` when they differed.
    reconciled: bool = False
    moved: bool = False


@dataclass
class JournalStats:
    pending_writes: int
    pending_conversations: int
    bytes_held: int


class Journal:
    def __init__(self, max_bytes: int, tenant_share: float) -> None:
        self.max_bytes = max_bytes
        self.tenant_max = max(1, int(max_bytes * tenant_share))
        self._lanes: dict[Key, Lane] = {}
        self._order = itertools.count()
        self._bytes = 0
        self._tenant_bytes: dict[str, int] = {}
        self._pending = 0

    @property
    def pending(self) -> int:
        return self._pending

    @property
    def bytes_held(self) -> int:
        return self._bytes

    def stats(self) -> JournalStats:
        return JournalStats(self._pending, len(self._lanes), self._bytes)

    def lane(self, key: Key) -> Lane | None:
        return self._lanes.get(key)

    def lanes(self) -> list[Lane]:
        return list(self._lanes.values())

    def open(
        self, key: Key, base: Conversation | None, recent: dict[str, tuple[int, int]] | None = None
    ) -> Lane:
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = Lane(key, base, next(self._order), recent=dict(recent or {}))
        return lane

    def discard(self, lane: Lane) -> None:
        """Drop a lane no write was journaled in (the write that opened it was refused)."""
        if not lane.entries and self._lanes.get(lane.key) is lane:
            del self._lanes[lane.key]
            lane.drained.set()

    def admit(self, tenant: str, size: int) -> None:
        """Raise StoreUnavailable when `size` more bytes would pass the budget or the tenant's share."""
        if self._bytes + size > self.max_bytes:
            raise StoreUnavailable(
                f"the store is unreachable and the outage journal is full ({self._bytes} bytes held)"
            )
        if self._tenant_bytes.get(tenant, 0) + size > self.tenant_max:
            raise StoreUnavailable(
                "the store is unreachable and this tenant's share of the outage journal is used up"
            )

    def add(self, lane: Lane, entry: Entry, *, force: bool = False) -> None:
        size = entry.size
        if not force:
            self.admit(lane.key[0], size)
        lane.entries.append(entry)
        self._pending += 1
        self._bytes += size
        tenant = lane.key[0]
        self._tenant_bytes[tenant] = self._tenant_bytes.get(tenant, 0) + size

    def pop(self, lane: Lane, count: int = 1) -> None:
        for _ in range(count):
            entry = lane.entries.popleft()
            self._pending -= 1
            self._bytes -= entry.size
            tenant = lane.key[0]
            left = self._tenant_bytes[tenant] - entry.size
            if left:
                self._tenant_bytes[tenant] = left
            else:
                del self._tenant_bytes[tenant]

    def close(self, lane: Lane) -> None:
        """The lane is replayed: forget it and let the writes that waited for it go."""
        if self._lanes.get(lane.key) is lane and not lane.entries:
            del self._lanes[lane.key]
            lane.drained.set()

    def next_lane(self, busy: Set[Key] = frozenset()) -> Lane | None:
        """The lane to replay next, of those not `busy`: one a writer waits for first, then the oldest."""
        free = [lane for key, lane in self._lanes.items() if key not in busy]
        if not free:
            return None
        return min(free, key=lambda lane: (lane.waiters == 0, lane.order))
