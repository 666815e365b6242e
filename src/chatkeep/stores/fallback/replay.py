"""Replaying the journal into Redis once it answers again: one conversation's writes in the order
they were acknowledged, a bounded batch at a time, each with its caller's scope.

Before the first write of a conversation is replayed, Redis' state is compared with the state the
writes were accepted against (`Lane.base`). When they are equal the replayed seqs are the seqs
acknowledged. When they differ (another instance wrote the conversation meanwhile) the writes are
applied all the same after what Redis holds, and every message whose seq changed is counted, logged
and handed to the listener (which publishes it with its final seq).

A replayed write that Redis refuses (the conversation was deleted meanwhile, a version moved) is
logged and counted, never dropped silently. A replay cut off by a new outage stays in the journal
and is run again: appends are idempotent by message id, a patch is recognised by its version,
deltas by their offset.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from chatkeep.errors import ChatkeepError, Conflict, NotFound, StoreUnavailable, VersionMismatch
from chatkeep.models import ANYONE, Conversation, Message
from chatkeep.stores.base import Store
from chatkeep.stores.fallback.journal import (
    Append,
    Create,
    Delete,
    Entry,
    Extend,
    Journal,
    Lane,
    Patch,
    Touch,
)
from chatkeep.stores.fallback.knowledge import Knowledge
from chatkeep.stores.locks import KeyedLocks
from chatkeep.stores.memory import MemoryStore

log = logging.getLogger("chatkeep.fallback")
BATCH = 100  # messages replayed in one append
Listener = Callable[[Conversation, list[Message]], Awaitable[None]]


@dataclass
class ReplayStats:
    replayed: int = 0  # journaled writes replayed (refused ones included)
    failures: int = 0  # journaled writes the store refused
    seq_changes: int = 0  # acknowledged messages stored at another seq
    moved: int = 0  # conversations another writer changed during the outage


@dataclass(eq=False)
class Replayer:
    primary: Store
    journal: Journal
    memory: MemoryStore
    known: Knowledge
    locks: KeyedLocks
    stats: ReplayStats = field(default_factory=ReplayStats, init=False)
    listener: Listener | None = field(default=None, init=False)
    _last: dict[tuple[str, str], Conversation | None] = field(default_factory=dict, init=False, repr=False)

    async def step(self, lane: Lane, degraded: Callable[[], bool]) -> None:
        """Replay one batch of the lane (or close it when it is empty). Raises StoreUnavailable
        when the store stops answering; the batch then stays journaled."""
        async with self.locks.hold(lane.key):
            if degraded():
                return
            if not lane.entries:
                self._close(lane)
                return
            if not lane.reconciled:
                await self._reconcile(lane)
            try:
                done = await self._apply(lane)
            finally:
                self.known.wrote(lane.key)
            self.journal.pop(lane, done)
            self.stats.replayed += done
            if not lane.entries:
                self._close(lane)

    def _close(self, lane: Lane) -> None:
        last = self._last.pop(lane.key, None)
        if last is not None:
            self.known.learn(last)
        else:
            self.known.forget(lane.key)
        self.memory.forget(*lane.key)
        self.journal.close(lane)

    async def _reconcile(self, lane: Lane) -> None:
        base = lane.base
        if base is not None:
            try:
                current: Conversation | None = await self.primary.get_conversation(*lane.key, ANYONE)
            except NotFound:
                current = None
            if current is None or (current.last_seq, current.version) != (base.last_seq, base.version):
                lane.moved = True
                self.stats.moved += 1
                log.warning(
                    "conversation %r of tenant %r changed in the store during the outage (seq %s, "
                    "version %s when its writes here were accepted; now %s): replaying them after it",
                    lane.key[1],
                    lane.key[0],
                    base.last_seq,
                    base.version,
                    "gone" if current is None else f"seq {current.last_seq}, version {current.version}",
                )
        lane.reconciled = True

    async def _apply(self, lane: Lane) -> int:
        """Replay the next write (or run of appends) of the lane; return how many entries it took."""
        entries = _batch(lane)
        try:
            await self._replay(lane, entries)
        except ChatkeepError as exc:
            if isinstance(exc, StoreUnavailable):
                raise
            if len(entries) == 1:
                self._refused(lane, entries[0], exc)
                return 1
            # a merged run of appends was refused: its first write alone, then the rest
            try:
                await self._replay(lane, entries[:1])
            except ChatkeepError as alone:
                if isinstance(alone, StoreUnavailable):
                    raise
                self._refused(lane, entries[0], alone)
            return 1
        return len(entries)

    def _refused(self, lane: Lane, entry: Entry, exc: ChatkeepError) -> None:
        self.stats.failures += 1
        log.error(
            "replaying %s on conversation %r of tenant %r was refused (%s: %s); this write, "
            "acknowledged during the outage, is not in the store",
            type(entry).__name__.lower(),
            lane.key[1],
            lane.key[0],
            exc.code,
            exc.detail,
        )

    async def _replay(self, lane: Lane, entries: list[Entry]) -> None:
        p = self.primary
        first = entries[0]
        if isinstance(first, Append):
            runs = [e for e in entries if isinstance(e, Append)]
            messages = [m for e in runs for m in e.request.messages]
            outcome = await p.append(replace(first.request, messages=messages))
            self._last[lane.key] = outcome.conversation
            acked = {k: v for e in runs for k, v in e.acked.items()}
            changed = [
                r.message for r in outcome.results if acked.get(r.message.id, r.message.seq) != r.message.seq
            ]
            if changed:
                await self._changed(lane, outcome.conversation, changed)
        elif isinstance(first, Create):
            await self._create(lane, first)
        elif isinstance(first, Patch):
            await self._patch(lane, first)
        elif isinstance(first, Touch):
            self._last[lane.key] = await p.touch(first.ref)
        elif isinstance(first, Delete):
            with contextlib.suppress(NotFound):  # gone already: by a cut-off replay, or expired
                await p.delete(first.ref)
            self._last[lane.key] = None
        elif isinstance(first, Extend):
            self._last[lane.key] = (await p.extend(first.request)).conversation
        else:
            await p.finish(first.request)
            self._last.pop(lane.key, None)  # its state is not answered: learned afresh on next use

    async def _create(self, lane: Lane, entry: Create) -> None:
        c = entry.conversation
        try:
            self._last[lane.key] = await self.primary.create_conversation(c)
        except Conflict:
            # a replay cut off before its answer: the id was generated here, so it is ours
            found = await self.primary.get_conversation(c.tenant, c.id, ANYONE)
            if (found.user, found.workspace, found.mode) != (c.user, c.workspace, c.mode):
                raise
            self._last[lane.key] = found

    async def _patch(self, lane: Lane, entry: Patch) -> None:
        sent = entry.request
        if lane.moved:  # versions here and in the store differ: only an unconditional patch applies
            expected = sent.expected_version
        else:
            expected = entry.version_after - 1
        try:
            self._last[lane.key] = await self.primary.update(replace(sent, expected_version=expected))
        except VersionMismatch as exc:
            if not lane.moved and exc.current_version == entry.version_after:
                # applied by a replay cut off before its answer
                self._last[lane.key] = await self.primary.get(sent.ref)
            elif sent.expected_version is None:  # If-Match: * applies over whatever is there
                self._last[lane.key] = await self.primary.update(sent)
            else:
                raise

    async def _changed(self, lane: Lane, conversation: Conversation, messages: list[Message]) -> None:
        self.stats.seq_changes += len(messages)
        log.warning(
            "%d messages of conversation %r of tenant %r were stored at other seqs than acknowledged "
            "during the outage",
            len(messages),
            lane.key[1],
            lane.key[0],
        )
        if self.listener is not None:
            try:
                await self.listener(conversation, messages)
            except Exception:
                log.exception("publishing the final seqs of conversation %r failed", lane.key[1])


def _batch(lane: Lane) -> list[Entry]:
    """The next write of the lane, or a run of appends with the same scope and limits (at most
    BATCH messages, at least one write)."""
    first = lane.entries[0]
    if not isinstance(first, Append):
        return [first]
    run: list[Entry] = [first]
    count = len(first.request.messages)
    for entry in itertools.islice(lane.entries, 1, None):
        if not (
            isinstance(entry, Append)
            and replace(entry.request, messages=()) == replace(first.request, messages=())
            and count + len(entry.request.messages) <= BATCH
        ):
            break
        run.append(entry)
        count += len(entry.request.messages)
    return run
