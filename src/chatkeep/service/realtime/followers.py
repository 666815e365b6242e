"""Followers as the real-time service sees them: what it needs of a connection (Follower), where
its reads come from (Source), and where a follower that is not yet a member of a conversation's
channel stands (Place)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from chatkeep.codec import Frame
from chatkeep.service.auth import Principal
from chatkeep.service.messages import MessageService


class Follower(Protocol):
    """A connection that receives frames. `send` never blocks; a follower that cannot keep up with
    live events ends itself (the client resumes)."""

    principal: Principal

    def send(self, frame: Frame) -> None: ...

    async def drained(self) -> None:
        """Return when the follower can take more (a backlog is paced by this)."""

    def interrupted(self) -> None:
        """Events may have been missed (the bus lost its connection): the follower should resume."""

    def lagging(self) -> None:
        """Too much is waiting for this follower: it should resume later instead."""

    def failed(self, conversation_id: str, error: Exception) -> None:
        """Following a conversation ended: its backlog could not be read (the error says why)."""


# The reads a follower makes: the chat service's message reads, with the follower's own rights.
Source = MessageService


# Told (last seq sent, how many were replayed) once a follower's backlog is sent.
Ready = Callable[[int, int], None]


@dataclass(eq=False, slots=True)
class Place:
    """A follower that is not a member: catching up from `seq`, or ahead of the channel at `seq`."""

    seq: int
    catching_up: bool = True
    held: list[Frame] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
