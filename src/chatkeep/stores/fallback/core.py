"""FallbackStore: a Redis store whose outages neither lose an acknowledged write nor let a write
reach a conversation its caller may not.

While Redis answers, every call goes to it, and what it answers teaches this instance the exact
state of the conversations it reads and writes (knowledge.py); writes to one conversation run one
at a time in this instance so that what is learned is never older than what Redis holds. While it
does not, writes that can be checked are accepted in memory and journaled (admission.py), and a
probe checks Redis every `probe_interval` seconds. Once it answers, the journal is replayed in the
background (replay.py), a conversation at a time in bounded batches: writes to a conversation whose
replay is pending wait for it; every other conversation goes straight to Redis.

With `refuse=True` an outage answers StoreUnavailable to every call instead (nothing is kept).
What the journal holds lives in this process: it survives a Redis outage, not a crash of the
process during one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from chatkeep.errors import NotFound, StoreUnavailable
from chatkeep.models import Conversation
from chatkeep.stores.base import Store
from chatkeep.stores.fallback.admission import Admission
from chatkeep.stores.fallback.journal import Journal, JournalStats
from chatkeep.stores.fallback.knowledge import Key, Knowledge
from chatkeep.stores.fallback.replay import Listener, Replayer, ReplayStats
from chatkeep.stores.locks import KeyedLocks
from chatkeep.stores.memory import MemoryStore
from chatkeep.stores.requests import Ref
from chatkeep.tasks import stop, stopping

T = TypeVar("T")
log = logging.getLogger("chatkeep.fallback")
MIB = 1024 * 1024
REPLAY_LANES = 4  # conversations replayed at once (each in its own order)


class FallbackCore(Store):
    """The dispatch between Redis and the outage path; the Store methods are in `FallbackStore`."""

    def __init__(
        self,
        primary: Store,
        *,
        refuse: bool = False,
        probe_interval: float = 1.0,
        journal_max_bytes: int = 128 * MIB,
        tenant_share: float = 0.25,
        shared: bool = False,
    ) -> None:
        self.primary = primary
        self.url = primary.url
        self.refuse = refuse
        self._probe_interval = probe_interval
        self._memory = MemoryStore()
        self._known = Knowledge()
        self._locks = KeyedLocks()
        self._journal = Journal(journal_max_bytes, tenant_share)
        self._outage = Admission(self._memory, self._known, self._journal, self.url.redacted, shared)
        self._replayer = Replayer(primary, self._journal, self._memory, self._known, self._locks)
        self._probe: asyncio.Task[None] | None = None
        self._replaying: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def __repr__(self) -> str:
        return f"FallbackStore({self.primary!r})"

    @property
    def pending(self) -> int:
        """Writes held in memory, waiting for the primary."""
        return self._journal.pending

    def journal_stats(self) -> JournalStats:
        return self._journal.stats()

    def replay_stats(self) -> ReplayStats:
        return self._replayer.stats

    def watch_reseq(self, listener: Listener) -> None:
        self._replayer.listener = listener

    # -- lifecycle --------------------------------------------------------------------------------

    async def connect(self) -> None:
        if self._replaying is None or self._replaying.done():
            self._replaying = asyncio.create_task(self._replay_loop(), name="chatkeep-fallback-replay")
        try:
            await self.primary.connect()
        except StoreUnavailable as exc:
            log.warning("%r is down at start: %s", self.primary, exc.detail)
            self._degrade()

    async def close(self) -> None:
        await stop(self._probe)
        await stop(self._replaying)
        self._probe = self._replaying = None
        if self._journal.pending:
            with contextlib.suppress(StoreUnavailable):
                await self.primary.ping()
                self.degraded = False
                while (lane := self._journal.next_lane()) is not None:
                    await self._replayer.step(lane, lambda: False)
        if self._journal.pending:
            log.error(
                "closing with %d writes for %r never replayed: they are lost",
                self._journal.pending,
                self.primary,
            )
        await self.primary.close()

    async def migrate(self) -> None:
        with contextlib.suppress(StoreUnavailable):
            await self.primary.migrate()

    async def ping(self) -> None:
        """Answers while degraded too: an outage of the primary is handled (kept or refused), and
        this instance still serves everything else."""
        if self.degraded:
            return
        try:
            await self.primary.ping()
        except StoreUnavailable:
            self._degrade()

    def _degrade(self) -> None:
        if not self.degraded:
            log.warning(
                "%r unreachable: %s", self.primary, "refusing writes" if self.refuse else "journaling writes"
            )
        self.degraded = True
        if self._probe is None or self._probe.done():
            self._probe = asyncio.create_task(self._recover(), name="chatkeep-fallback-probe")

    async def _recover(self) -> None:
        while self.degraded and not stopping():
            await asyncio.sleep(self._probe_interval)
            try:
                await self.primary.ping()
            except StoreUnavailable:
                continue
            self._known.settle()
            self.degraded = False
            log.warning("%r is back; replaying %d writes", self.primary, self._journal.pending)
            self._wake.set()

    async def _replay_loop(self) -> None:
        while not stopping():
            await self._wake.wait()
            self._wake.clear()
            busy: set[Key] = set()
            await asyncio.gather(*(self._replay_lanes(busy) for _ in range(REPLAY_LANES)))

    async def _replay_lanes(self, busy: set[Key]) -> None:
        """Replay a batch of the first lane no other worker is on, and again, until none is left."""
        while not self.degraded and (lane := self._journal.next_lane(busy)) is not None:
            busy.add(lane.key)
            try:
                await self._replayer.step(lane, lambda: self.degraded)
            except StoreUnavailable:
                self._degrade()
            except Exception:
                log.exception("replay into %r failed; retrying", self.primary)
                await asyncio.sleep(self._probe_interval)
            finally:
                busy.discard(lane.key)
            await asyncio.sleep(0)

    # -- dispatch ---------------------------------------------------------------------------------

    async def _await_replay(self, key: Key) -> bool:
        """Wait (a while) for the pending replay of a conversation; False when none is pending."""
        lane = self._journal.lane(key)
        if lane is None or self.degraded:
            return False
        lane.waiters += 1
        self._wake.set()
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lane.drained.wait(), self._probe_interval)
        finally:
            lane.waiters -= 1
        return True

    async def _write(
        self,
        ref: Ref,
        on_primary: Callable[[Store], Awaitable[T]],
        learn: Callable[[T], None],
        on_outage: Callable[[], Awaitable[T]],
    ) -> T:
        """A write to one conversation: to Redis, or (while it is unreachable) the outage path."""
        key = ref.key
        while True:
            if await self._await_replay(key):
                continue
            async with self._locks.hold(key):
                if self._journal.lane(key) is not None and not self.degraded:
                    continue
                if self.degraded:
                    if self.refuse:
                        raise self._outage.unavailable()
                    return await on_outage()
                try:
                    result = await on_primary(self.primary)
                except StoreUnavailable:
                    self._known.cut_off(key)
                    self._degrade()
                    raise
                except NotFound:
                    self._known.gone(key, ref.scope)
                    raise
                finally:
                    self._known.wrote(key)
                learn(result)
                return result

    async def _read(
        self, on_primary: Callable[[Store], Awaitable[T]], on_outage: Callable[[], Awaitable[T]]
    ) -> T:
        if not self.degraded:
            try:
                return await on_primary(self.primary)
            except StoreUnavailable:
                self._degrade()
                if self.refuse:
                    raise
        if self.refuse:
            raise self._outage.unavailable()
        return await on_outage()

    async def _read_one(
        self, key: Key, on_primary: Callable[[Store], Awaitable[T]], on_outage: Callable[[], Awaitable[T]]
    ) -> T:
        """A read of one conversation: after its pending replay, so it shows every acknowledged write."""
        while await self._await_replay(key):
            pass
        return await self._read(on_primary, on_outage)

    def _learn(self, conversation: Conversation) -> None:
        self._known.learn(conversation)
