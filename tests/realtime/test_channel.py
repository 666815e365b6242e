"""The Hub's per-conversation ordering, driven directly: events handed to it out of order, twice, or
not at all, as several writers and instances produce them. Every follower must get each message once,
in seq order, with no gap; what never arrives is read from the store (a real memory store)."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from chatkeep.codec import Frame
from chatkeep.events.local import LocalEventBus
from chatkeep.models import Event, EventType, Message, MessageStatus, NewMessage, Role, Tenant
from chatkeep.service.auth import Principal
from chatkeep.service.chat import ChatService
from chatkeep.service.conversations import NewConversation
from chatkeep.service.events import conversation_event, created_event, delta_event
from chatkeep.service.lifecycle import Lifetimes
from chatkeep.service.limits import Limits
from chatkeep.service.realtime import Hub
from chatkeep.service.routing import StoreRouter
from chatkeep.stores.memory import MemoryStore

GAP = 0.02


@dataclass(eq=False)
class Recorder:
    """A follower that keeps what it is sent; `gate` (when set) paces its backlog."""

    principal: Principal
    frames: list[dict[str, Any]] = field(default_factory=list)
    gate: asyncio.Event | None = None
    interrupts: int = 0
    errors: list[Exception] = field(default_factory=list)
    ready: list[tuple[int, int]] = field(default_factory=list)

    def send(self, frame: Frame) -> None:
        self.frames.append(orjson.loads(frame.payload))

    async def drained(self) -> None:
        if self.gate is not None:
            await self.gate.wait()

    def interrupted(self) -> None:
        self.interrupts += 1

    def lagging(self) -> None:
        self.interrupts += 1

    def failed(self, conversation_id: str, error: Exception) -> None:
        self.errors.append(error)

    def seqs(self) -> list[int]:
        return [f["seq"] for f in self.frames if f["type"] == "message.created"]


@dataclass
class World:
    store: MemoryStore
    chat: ChatService
    hub: Hub
    owner: Principal

    async def conversation(self) -> str:
        created, _ = await self.chat.create_conversation(self.owner, NewConversation(workspace="w"))
        return created.id

    async def store_messages(self, cid: str, count: int) -> list[Message]:
        """Messages stored without their events: the test decides what the hub hears of them."""
        outcome = await self.store.append_messages(
            self.owner.tenant.id,
            cid,
            [NewMessage(id=uuid.uuid4().hex, role=Role.USER, content=f"m{n}") for n in range(count)],
        )
        return [r.message for r in outcome.results]

    async def events_of(self, cid: str, messages: list[Message]) -> list[Event]:
        conversation = await self.chat.get_conversation(self.owner, cid)
        return [created_event(conversation, m) for m in messages]

    async def follow(self, cid: str, after_seq: int | None = None, **fields: Any) -> Recorder:
        follower = Recorder(self.owner, **fields)
        await self.hub.attach(follower)
        await self.hub.follow_conversation(follower, cid, after_seq, lambda *a: follower.ready.append(a))
        return follower


@pytest.fixture
async def world() -> AsyncIterator[World]:
    store = MemoryStore()
    await store.connect()
    bus = LocalEventBus()
    chat = ChatService(StoreRouter(store, store, store), bus, Limits(), Lifetimes())
    hub = Hub(bus, chat, page_size=50, gap_wait=GAP)
    tenant = Tenant(id="t1", name="T", api_key_hash="x", token_secret="s", created_at=0)
    yield World(store, chat, hub, Principal(tenant, "ann", None))
    await hub.close()
    await store.close()


async def settle() -> None:
    await asyncio.sleep(GAP * 8)


async def test_events_out_of_order_and_twice_reach_each_follower_once_in_order(world: World) -> None:
    cid = await world.conversation()
    followers = [await world.follow(cid) for _ in range(3)]
    events = await world.events_of(cid, await world.store_messages(cid, 40))
    rng = random.Random(7)
    shuffled = events + rng.sample(events, 15)  # every event, 15 of them twice
    rng.shuffle(shuffled)
    for event in shuffled:
        world.hub.dispatch(event)
    await settle()
    for follower in followers:
        assert follower.seqs() == list(range(1, 41))


@pytest.mark.parametrize("seed", range(60))
async def test_any_mix_of_reordered_repeated_and_lost_events_gives_every_seq_once(
    world: World, seed: int
) -> None:
    rng = random.Random(seed)
    cid = await world.conversation()
    count = rng.randint(1, 120)
    early = await world.follow(cid)
    events = await world.events_of(cid, await world.store_messages(cid, count))
    heard = [e for e in events if rng.random() > 0.2]  # a fifth never arrive
    heard += [rng.choice(events) for _ in range(rng.randint(0, count))]  # some arrive twice
    rng.shuffle(heard)
    late: Recorder | None = None
    for i, event in enumerate(heard):
        world.hub.dispatch(event)
        if i == len(heard) // 2:  # one joins while the stream is in disorder, from an arbitrary point
            late = await world.follow(cid, after_seq=rng.randint(0, count))
        if rng.random() < 0.1:
            await asyncio.sleep(0)
    if late is None:
        late = await world.follow(cid, after_seq=0)
    await settle()
    assert early.seqs() == list(range(1, count + 1))
    start = late.seqs()[0] if late.seqs() else count + 1
    assert late.seqs() == list(range(start, count + 1))
    assert early.interrupts == late.interrupts == 0


async def test_a_delta_before_its_message_waits_for_it(world: World) -> None:
    cid = await world.conversation()
    follower = await world.follow(cid)
    (first,) = await world.store_messages(cid, 1)
    opened = await world.store.append_messages(
        world.owner.tenant.id, cid, [NewMessage(id="r", role=Role.ASSISTANT, status=MessageStatus.STREAMING)]
    )
    reply = opened.results[0].message
    grown = await world.store.extend_message(world.owner.tenant.id, cid, "r", "Hello", offset=0)
    conversation = await world.chat.get_conversation(world.owner, cid)
    world.hub.dispatch(delta_event(grown))  # the delta arrives first, then the reply's creation...
    world.hub.dispatch(created_event(conversation, reply))
    world.hub.dispatch(created_event(conversation, first))  # ...and the message before it last
    await settle()
    kinds = [(f["type"], f["seq"]) for f in follower.frames if f["type"].startswith("message.")]
    assert kinds == [("message.created", 1), ("message.created", 2), ("message.delta", 2)]


async def test_a_follower_catching_up_gets_its_backlog_then_what_happened_meanwhile(world: World) -> None:
    cid = await world.conversation()
    await world.follow(cid)  # the channel exists and is live
    stored = await world.store_messages(cid, 120)
    for event in await world.events_of(cid, stored):
        world.hub.dispatch(event)
    gate = asyncio.Event()
    late = await world.follow(cid, after_seq=10, gate=gate)  # paced: its backlog waits for the gate
    more = await world.store_messages(cid, 30)
    for event in await world.events_of(cid, more):
        world.hub.dispatch(event)  # live while it catches up
    gate.set()
    await settle()
    assert late.seqs() == list(range(11, 151))
    assert late.ready == [(150, 140)]  # subscribed once, after its backlog and what came meanwhile


async def test_a_follower_ahead_of_the_channel_joins_when_the_channel_reaches_it(world: World) -> None:
    cid = await world.conversation()
    behind = await world.follow(cid)
    events = await world.events_of(cid, await world.store_messages(cid, 10))
    ahead = await world.follow(cid)  # read the conversation at 10; the channel has heard of nothing
    for event in events[5:] + events[:5]:
        world.hub.dispatch(event)
    more = await world.events_of(cid, await world.store_messages(cid, 5))
    for event in more:
        world.hub.dispatch(event)
    await settle()
    assert behind.seqs() == list(range(1, 16))
    assert ahead.seqs() == list(range(11, 16))


async def test_a_deleted_conversation_created_again_starts_over(world: World) -> None:
    cid = await world.conversation()
    follower = await world.follow(cid)
    for event in await world.events_of(cid, await world.store_messages(cid, 3)):
        world.hub.dispatch(event)
    gone = await world.chat.delete_conversation(world.owner, cid)
    world.hub.dispatch(conversation_event(EventType.CONVERSATION_DELETED, gone))
    again, _ = await world.chat.create_conversation(world.owner, NewConversation(workspace="w", id=cid))
    world.hub.dispatch(conversation_event(EventType.CONVERSATION_CREATED, again))
    for event in await world.events_of(cid, await world.store_messages(cid, 2)):
        world.hub.dispatch(event)
    await settle()
    assert follower.seqs() == [1, 2, 3, 1, 2]


async def test_a_conversation_that_changed_hands_is_not_followed_into_its_new_life(world: World) -> None:
    cid = await world.conversation()
    follower = await world.follow(cid)
    gone = await world.chat.delete_conversation(world.owner, cid)
    world.hub.dispatch(conversation_event(EventType.CONVERSATION_DELETED, gone))
    bob = Principal(world.owner.tenant, "bob", None)
    taken, _ = await world.chat.create_conversation(bob, NewConversation(workspace="w", id=cid))
    world.hub.dispatch(conversation_event(EventType.CONVERSATION_CREATED, taken))
    await world.store.append_messages(
        world.owner.tenant.id, cid, [NewMessage(id="b1", role=Role.USER, content="bob's")]
    )
    conversation = await world.chat.get_conversation(bob, cid)
    stored = await world.store.read_messages(conversation)
    world.hub.dispatch(created_event(conversation, stored.messages[0]))
    await settle()
    assert [f["type"] for f in follower.frames] == ["conversation.deleted"]
    assert world.hub.channels == 0
