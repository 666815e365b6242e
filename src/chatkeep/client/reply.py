"""A streaming reply: a message opened as `streaming`, grown by deltas, finished at the end.

Each delta carries the offset it continues (the content length stored so far), so a delta sent again
after a lost answer is stored once. Leaving the block normally finishes the reply `complete`;
leaving it by an exception (cancellation included) marks it `interrupted` and lets the exception go
on."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable
from types import TracebackType
from typing import Any, Literal, Protocol, TypeVar

from chatkeep.client import calls
from chatkeep.client.calls import Call
from chatkeep.client.types import Delta, Message
from chatkeep.models import Usage

T = TypeVar("T")


class Runner(Protocol):
    def __call__(self, call: Call[T]) -> T: ...


class AsyncRunner(Protocol):
    def __call__(self, call: Call[T]) -> Awaitable[T]: ...


class _Reply:
    def __init__(self, conversation_id: str, body: dict[str, Any]) -> None:
        self.conversation_id = conversation_id
        self.id = str(body["id"])
        self._body = body
        self.length = 0  # characters stored so far
        self.usage: Usage | None = None  # set before the block ends to store it with the reply
        self.message: Message | None = None  # the stored message: once opened, and again once finished

    def _delta(self, text: str) -> Call[Delta]:
        if not text:
            raise ValueError("a delta needs some text")
        return calls.append_delta(self.conversation_id, self.id, text, self.length)

    def _finish(self, status: Literal["complete", "interrupted"]) -> Call[Message]:
        return calls.finish_stream(self.conversation_id, self.id, status, self.usage)


class AsyncReply(_Reply):
    """`async with client.stream_reply(cid) as reply: await reply.send("...")`."""

    def __init__(self, run: AsyncRunner, conversation_id: str, body: dict[str, Any]) -> None:
        super().__init__(conversation_id, body)
        self._run = run

    async def send(self, text: str) -> Delta:
        """Append `text` to the reply; answers once it is stored."""
        delta = await self._run(self._delta(text))
        self.length = delta.length
        return delta

    async def __aenter__(self) -> AsyncReply:
        opened = await self._run(calls.append(self.conversation_id, self._body))
        self.message = opened.message
        self.length = len(opened.message.content)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is None:
            self.message = await self._run(self._finish("complete"))
            return
        # Marking it interrupted is best effort: the block's own exception is what the caller sees.
        with contextlib.suppress(Exception):
            self.message = await self._run(self._finish("interrupted"))


class Reply(_Reply):
    """`with client.stream_reply(cid) as reply: reply.send("...")`."""

    def __init__(self, run: Runner, conversation_id: str, body: dict[str, Any]) -> None:
        super().__init__(conversation_id, body)
        self._run = run

    def send(self, text: str) -> Delta:
        """Append `text` to the reply; answers once it is stored."""
        delta = self._run(self._delta(text))
        self.length = delta.length
        return delta

    def __enter__(self) -> Reply:
        opened = self._run(calls.append(self.conversation_id, self._body))
        self.message = opened.message
        self.length = len(opened.message.content)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is None:
            self.message = self._run(self._finish("complete"))
            return
        with contextlib.suppress(Exception):
            self.message = self._run(self._finish("interrupted"))
