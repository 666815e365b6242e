"""A lean WebSocket client for the real-time benchmark: many connections per process at little cost.

A general-purpose client spends tens of microseconds of Python per received frame, which on a two-core
machine would compete with the server it measures. This one does only what the benchmark needs: the
opening handshake (no extensions), masked text frames out, unmasked frames in, pongs for the
server's pings, and a timestamp for every `message.created` frame received.
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
import time
from collections.abc import Callable

import orjson

TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA


def encode_frame(opcode: int, payload: bytes) -> bytes:
    """A client frame: FIN set, masked as clients must."""
    mask = os.urandom(4)
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    elif length < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + masked


class LeanSocket(asyncio.Protocol):
    """One connection. `frames` receives every text payload (bytes) until `on_text` is replaced."""

    def __init__(self, on_text: Callable[[LeanSocket, bytes], None]) -> None:
        self.on_text = on_text
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._handshake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.upgraded = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(1006)
        if not self._handshake.done():
            self._handshake.set_exception(ConnectionError("closed during the handshake"))

    def data_received(self, data: bytes) -> None:
        if self.upgraded and not self._buffer:  # the usual case: whole frames, nothing left over
            n = len(data)
            if n >= 2 and data[0] == 0x81:
                length = data[1]
                if length < 126 and n == 2 + length:
                    self.on_text(self, data[2:])
                    return
                if length == 126 and n >= 4 and n == 4 + int.from_bytes(data[2:4], "big"):
                    self.on_text(self, data[4:])
                    return
        self._buffer += data
        if not self.upgraded:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self._buffer[:end])
            del self._buffer[: end + 4]
            if not head.startswith(b"HTTP/1.1 101"):
                self._handshake.set_exception(ConnectionError(head.decode(errors="replace")[:200]))
                return
            self.upgraded = True
            self._handshake.set_result(None)
        self._frames()

    def _frames(self) -> None:
        buf = self._buffer
        while len(buf) >= 2:
            opcode = buf[0] & 0x0F
            length = buf[1] & 0x7F
            offset = 2
            if length == 126:
                if len(buf) < 4:
                    return
                length = struct.unpack_from("!H", buf, 2)[0]
                offset = 4
            elif length == 127:
                if len(buf) < 10:
                    return
                length = struct.unpack_from("!Q", buf, 2)[0]
                offset = 10
            if len(buf) < offset + length:
                return
            payload = bytes(buf[offset : offset + length])
            del buf[: offset + length]
            if opcode == TEXT:
                self.on_text(self, payload)
            elif opcode == PING:
                self.send(PONG, payload)
            elif opcode == CLOSE:
                code = struct.unpack_from("!H", payload)[0] if len(payload) >= 2 else 1005
                if not self.closed.done():
                    self.closed.set_result(code)
                if self.transport is not None:
                    self.transport.close()

    def send(self, opcode: int, payload: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(encode_frame(opcode, payload))

    def send_json(self, frame: object) -> None:
        self.send(TEXT, orjson.dumps(frame))

    async def handshake(self, host: str, port: int, path: str) -> None:
        assert self.transport is not None
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        self.transport.write(request.encode())
        await self._handshake

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.send(CLOSE, struct.pack("!H", 1000))
            self.transport.close()


async def open_follower(
    host: str, port: int, token: str, conversation_id: str, on_event: Callable[[bytes, float], None]
) -> LeanSocket:
    """An authenticated socket following one conversation; `on_event(payload, arrived)` gets every
    frame that comes after the subscription is confirmed."""
    loop = asyncio.get_running_loop()
    replies: asyncio.Queue[bytes] = asyncio.Queue()

    def opening(_sock: LeanSocket, payload: bytes) -> None:
        replies.put_nowait(payload)

    _, sock = await loop.create_connection(lambda: LeanSocket(opening), host, port)
    await sock.handshake(host, port, "/v1/ws")
    sock.send_json({"type": "auth", "token": token})
    ready = orjson.loads(await asyncio.wait_for(replies.get(), 30))
    if ready.get("type") != "ready":
        raise RuntimeError(f"auth answered {ready}")
    sock.send_json({"type": "subscribe", "id": "s", "conversation_id": conversation_id})
    subscribed = orjson.loads(await asyncio.wait_for(replies.get(), 30))
    if subscribed.get("type") != "subscribed":
        raise RuntimeError(f"subscribe answered {subscribed}")
    sock.on_text = lambda _sock, payload: on_event(payload, time.perf_counter())
    return sock
