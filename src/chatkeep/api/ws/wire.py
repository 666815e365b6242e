"""The sending half of a WebSocket connection.

A frame (codec.Frame) is encoded once, whatever number of connections it goes to. When the server
offers a direct writer (the `chatkeep.direct` ASGI extension of chatkeep's uvicorn protocol, see
api/server.py), the complete WebSocket frame is built once as well and the same bytes are written to
every socket that can take them, with no task and no per-socket encoding. Otherwise frames go out
through ASGI `websocket.send`, one after the other, from a writer task.

A socket that cannot take more (the client reads slower than frames arrive) keeps frames in a queue
of at most `limit`; past that the connection is told it overflowed (it closes with 4008 and the client
resumes). A backlog is paced instead: it waits for `drained()` before each frame, so it never fills the
queue whatever its size.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Protocol

from starlette.types import Scope, Send

from chatkeep.codec import Frame

DIRECT = "chatkeep.direct"
log = logging.getLogger("chatkeep.ws")


class DirectWriter(Protocol):
    """What the server's direct writer offers (see api/server.py)."""

    def writable(self) -> bool:
        """The socket is open and its buffer below the high-water mark."""

    def write(self, data: bytes) -> bool:
        """Write bytes as they are; False when the connection is closed or closing."""

    async def wait_writable(self) -> None:
        """Return when the socket's buffer drained below the low-water mark (or it closed)."""


def text_frame(payload: bytes) -> bytes:
    """A complete server-to-client WebSocket text frame (FIN set, unmasked, uncompressed)."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return b"\x81\x7e" + n.to_bytes(2, "big") + payload
    return b"\x81\x7f" + n.to_bytes(8, "big") + payload


def wire_of(frame: Frame) -> bytes:
    data = frame.wire
    if data is None:
        data = frame.wire = text_frame(frame.payload)
    return data


class Outlet:
    """Frames to one client, in order."""

    __slots__ = ("_direct", "_send", "_limit", "_on_overflow", "_queue", "_writer", "_idle", "closed")

    def __init__(self, scope: Scope, send: Send, limit: int, on_overflow: Callable[[], None]) -> None:
        extensions = scope.get("extensions") or {}
        self._direct: DirectWriter | None = extensions.get(DIRECT)
        self._send = send
        self._limit = limit
        self._on_overflow = on_overflow
        self._queue: deque[Frame] | None = None  # frames waiting while a writer task drains them
        self._writer: asyncio.Task[None] | None = None
        self._idle: asyncio.Event | None = None  # set when the writer task has emptied the queue
        self.closed = False

    @property
    def direct(self) -> bool:
        """Whether frames go straight to the socket (the server offers `chatkeep.direct`)."""
        return self._direct is not None

    def send(self, frame: Frame) -> None:
        if self.closed:
            return
        direct = self._direct
        if direct is not None and self._queue is None and direct.writable():
            if not direct.write(wire_of(frame)):
                self.closed = True
            return
        queue = self._queue
        if queue is None:
            queue = self._queue = deque()
            self._idle = asyncio.Event()
            self._writer = asyncio.get_running_loop().create_task(self._write_queued())
        if len(queue) >= self._limit:
            self.closed = True
            self._on_overflow()
            return
        queue.append(frame)

    async def drained(self) -> None:
        """Return when nothing is waiting and the socket can take more."""
        while not self.closed:
            if self._idle is not None:
                await self._idle.wait()
            elif self._direct is not None and not self._direct.writable():
                await self._direct.wait_writable()
                if not self._direct.writable():  # woken because it closed
                    return
            else:
                return

    async def _write_queued(self) -> None:
        direct = self._direct
        queue = self._queue
        assert queue is not None
        try:
            while queue and not self.closed:
                frame = queue.popleft()
                if direct is not None:
                    await direct.wait_writable()
                    if not direct.write(wire_of(frame)):
                        self.closed = True
                else:
                    await self._send({"type": "websocket.send", "text": frame.text})
        except (OSError, RuntimeError):  # the client left meanwhile
            log.debug("client left with %d frames unsent", len(queue))
            self.closed = True
        finally:
            self._queue = None
            self._writer = None
            if self._idle is not None:
                self._idle.set()
                self._idle = None

    def stop(self) -> None:
        self.closed = True
        if self._writer is not None:
            self._writer.cancel()
        if self._idle is not None:
            self._idle.set()
