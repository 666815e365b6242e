"""The WebSocket protocol chatkeep runs under uvicorn: uvicorn's `websockets-sansio` one, made cheaper
for what a chat server holds (thousands of mostly idle sockets, each event written to all of them).

- The `chatkeep.direct` ASGI extension: a writer that puts a prepared frame's bytes on the socket at
  once, so that fan-out sends the same bytes to every follower with no task and no encoding per
  socket (see api/ws/wire.py). Handshake, reading, pings and closing stay uvicorn's.
- An open socket does not keep its handshake's request and response (nor their headers).
- The receive queue and the writable flag are one-consumer versions of asyncio's Queue and Event,
  in a tenth of their memory (each of those holds two or three deques).

A test serves through this protocol and checks the extension is there, so an upgrade of uvicorn that
changes what this relies on fails the suite rather than falling back silently.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request

from chatkeep.api.ws.wire import DIRECT


class Inbox:
    """`put_nowait`, `get` and `empty` of an asyncio.Queue, for a single consumer."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> Any:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.pop(0)

    def empty(self) -> bool:
        return not self._items


class Flag:
    """`set`, `clear`, `is_set` and `wait` of an asyncio.Event, with no waiter list until one waits."""

    __slots__ = ("_value", "_waiters")

    def __init__(self) -> None:
        self._value = False
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._value

    def set(self) -> None:
        self._value = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._value = False

    async def wait(self) -> bool:
        if self._value:
            return True
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        await waiter
        return True


class DirectWriter:
    """Writes to one socket (see api/ws/wire.DirectWriter).

    When nothing waits in the transport's buffer, bytes go to the socket with one `write` system
    call, skipping the event loop's transport bookkeeping (a quarter of a delivery's cost when a
    frame goes to thousands of sockets); what the socket does not take, and everything while the
    buffer holds something, goes through the transport, so order is kept. TLS sockets always go
    through the transport."""

    __slots__ = ("_protocol", "_fd")

    def __init__(self, protocol: WebSocketsSansIOProtocol) -> None:
        self._protocol = protocol
        transport = protocol.transport
        sock = transport.get_extra_info("socket")
        plain = transport.get_extra_info("sslcontext") is None and sock is not None
        self._fd: int = sock.fileno() if plain else -1

    def writable(self) -> bool:
        p = self._protocol
        return p.writable.is_set() and p.handshake_complete and not p.close_sent and not p.disconnected

    def write(self, data: bytes) -> bool:
        p = self._protocol
        transport = p.transport
        if p.close_sent or p.disconnected or transport.is_closing():
            return False
        if self._fd >= 0 and transport.get_write_buffer_size() == 0:
            try:
                sent = os.write(self._fd, data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:  # the peer is gone; the transport learns it from its own side
                return False
            if sent == len(data):
                return True
            data = data[sent:]
        transport.write(data)
        return True

    async def wait_writable(self) -> None:
        await self._protocol.writable.wait()


class WebSocketProtocol(WebSocketsSansIOProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = Inbox()  # type: ignore[assignment]
        self.writable = Flag()  # type: ignore[assignment]
        self.writable.set()

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        scope: Any = getattr(self, "scope", None)  # absent when the handshake was refused
        if scope is not None and not self.close_sent:
            scope["extensions"][DIRECT] = DirectWriter(self)
        # The scope has its own copy of the headers; the parser would keep these for the socket's life.
        event.headers.clear()

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.accept":
            # The handshake is over: an open socket lives on without its request and response.
            self.request = self.response = None  # type: ignore[assignment]
