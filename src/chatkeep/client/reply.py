"""A streaming reply: a message opened as `streaming`, grown by deltas, finished at the end.

Each delta carries the offset it continues (the content length stored so far), so a delta sent again
after a lost answer is stored once. Leaving the block normally finishes the reply `complete`;
leaving it by an exception (cancellation included) marks it `interrupted` and lets the exception go
on. `Reply` and `AsyncReply` share that logic; they differ in how they send a call and in the block
they open (`with` or `async with`)."""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Awaitable
from types import TracebackType
from typing import Any, Generic, Literal, Protocol, TypeVar

from chatkeep.client import calls
from chatkeep.client.calls import Call, message_body
from chatkeep.client.methods import Awaiting, Blocking, operation, run_sync
from chatkeep.client.types import Delta, Message
from chatkeep.models import Role, Usage

T = TypeVar("T")
R = TypeVar("R")


class Runner(Protocol):
    def __call__(self, call: Call[T]) -> T: ...


class AsyncRunner(Protocol):
    def __call__(self, call: Call[T]) -> Awaitable[T]: ...


def opening(
    conversation_id: str,
    role: Role | str = "assistant",
    *,
    id: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> tuple[str, dict[str, Any]]:
    """`with client.stream_reply(cid) as reply: reply.send("Hel")` (with an AsyncClient, `async with`
    and `await reply.send`): opens a streaming message, finishes it `complete` at the end of the
    block, `interrupted` if the block raises."""
    return conversation_id, message_body(str(role), "", id=id, metadata=metadata, status="streaming")


class _Reply(ABC, Generic[R]):
    def __init__(self, run: R, conversation_id: str, body: dict[str, Any]) -> None:
        self._run = run
        self.conversation_id = conversation_id
        self.id = str(body["id"])
        self._body = body
        self.length = 0  # characters stored so far
        self.usage: Usage | None = None  # set before the block ends to store it with the reply
        self.message: Message | None = None  # the stored message: once opened, and again once finished

    @abstractmethod
    async def _request(self, call: Call[T]) -> T: ...

    async def _send(self, text: str) -> Delta:
        """Append `text` to the reply; answers once it is stored."""
        if not text:
            raise ValueError("a delta needs some text")
        delta = await self._request(calls.append_delta(self.conversation_id, self.id, text, self.length))
        self.length = delta.length
        return delta

    send = operation(_send)

    async def _open(self) -> None:
        opened = await self._request(calls.post_message(self.conversation_id, self._body))
        self.message = opened.message
        self.length = len(opened.message.content)

    async def _finish(self, failed: bool) -> None:
        if not failed:
            self.message = await self._request(self._finish_call("complete"))
            return
        # Marking it interrupted is best effort: the block's own exception is what the caller sees.
        with contextlib.suppress(Exception):
            self.message = await self._request(self._finish_call("interrupted"))

    def _finish_call(self, status: Literal["complete", "interrupted"]) -> Call[Message]:
        return calls.finish_stream(self.conversation_id, self.id, status, self.usage)


class AsyncReply(_Reply[AsyncRunner], Awaiting):
    """`async with client.stream_reply(cid) as reply: await reply.send("...")`."""

    async def _request(self, call: Call[T]) -> T:
        return await self._run(call)

    async def __aenter__(self) -> AsyncReply:
        await self._open()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._finish(kind is not None)


class Reply(_Reply[Runner], Blocking):
    """`with client.stream_reply(cid) as reply: reply.send("...")`."""

    async def _request(self, call: Call[T]) -> T:
        return self._run(call)

    def __enter__(self) -> Reply:
        run_sync(self._open())
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        run_sync(self._finish(kind is not None))
