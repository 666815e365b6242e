"""What this instance knows exactly of the conversations it has read or written in Redis.

A conversation is known exactly when the last state read or written here is the state Redis holds,
as far as this instance can tell: every write to it from this instance has answered (writes to one
conversation run one at a time here, see `stores/locks.py`), none was cut off by the outage, and no read
older than the last write overwrote what that write taught. Only such conversations accept writes
while Redis is unreachable, so the seqs given out then continue Redis' own.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

from chatkeep.models import Conversation, Message, Scope

Key = tuple[str, str]  # (tenant, conversation id)

# Conversations remembered, least recently used dropped first.
REMEMBERED = 10_000
# Message ids remembered per conversation (the latest ones): a client that did not get its
# acknowledgement resends within moments, so a short window answers its retry with the stored seq.
RECENT_IDS = 32


@dataclass
class Known:
    conversation: Conversation
    # message id -> (seq, created_at) of the latest messages seen
    recent: OrderedDict[str, tuple[int, int]] = field(default_factory=OrderedDict)


class Knowledge:
    def __init__(self, remembered: int = REMEMBERED, recent_ids: int = RECENT_IDS) -> None:
        self._known: OrderedDict[Key, Known] = OrderedDict()
        self._uncertain: set[Key] = set()
        # key -> a number from `_clock`, new at each write; bounded (a key dropped reads as 0)
        self._epochs: OrderedDict[Key, int] = OrderedDict()
        self._clock = itertools.count(1)
        self._remembered = remembered
        self._recent_ids = recent_ids

    def __len__(self) -> int:
        return len(self._known)

    def get(self, key: Key) -> Known | None:
        return self._known.get(key)

    def epoch(self, key: Key) -> int:
        """Changes with every write of this instance to the conversation: a read that started at
        another epoch may be older than what a write taught, and is not learned."""
        return self._epochs.get(key, 0)

    def learn(self, conversation: Conversation, messages: Iterable[Message] = ()) -> None:
        """Remember a conversation as Redis holds it now (after a write of this instance, or a read
        that no write overlapped)."""
        key = (conversation.tenant, conversation.id)
        known = self._known.get(key)
        if known is None:
            known = self._known[key] = Known(conversation)
        else:
            known.conversation = conversation
        self._known.move_to_end(key)
        for message in messages:
            known.recent[message.id] = (message.seq, message.created_at)
            known.recent.move_to_end(message.id)
        while len(known.recent) > self._recent_ids:
            known.recent.popitem(last=False)
        while len(self._known) > self._remembered:
            self._known.popitem(last=False)

    def learn_read(self, conversation: Conversation, epoch: int, messages: Iterable[Message] = ()) -> None:
        """Learn from a read, unless a write of this instance ended since the read began."""
        key = (conversation.tenant, conversation.id)
        if self.epoch(key) == epoch:
            self.learn(conversation, messages)

    def wrote(self, key: Key) -> None:
        self._epochs[key] = next(self._clock)
        self._epochs.move_to_end(key)
        if len(self._epochs) > 4 * self._remembered:
            self._epochs.popitem(last=False)

    def forget(self, key: Key) -> None:
        self._known.pop(key, None)
        self.wrote(key)

    def gone(self, key: Key, scope: Scope) -> None:
        """A write in `scope` answered NotFound: the conversation is gone, unless the scope just
        does not reach it (another user's attempt tells nothing about it)."""
        known = self._known.get(key)
        if known is None or scope.admits(known.conversation.user, known.conversation.workspace):
            self.forget(key)

    def cut_off(self, key: Key) -> None:
        """A write to this conversation was cut off by the outage: Redis may or may not have run
        it, so its state is unknown until Redis answers again."""
        self._uncertain.add(key)
        self.forget(key)

    def is_uncertain(self, key: Key) -> bool:
        return key in self._uncertain

    def settle(self) -> None:
        """Redis answers again: what was uncertain is read afresh from it on next use."""
        self._uncertain.clear()
