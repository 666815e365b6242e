"""The floor under the real-time benchmark: what this machine's kernel charges a process for writing a
small frame to a TCP socket whose reader waits on the same machine.

    python bench/floor.py PORT SOCKETS MESSAGES SPACING

A bare server for bench/realtime.py's followers: it answers their WebSocket handshake, `auth` and
`subscribe` with the frames they expect, then writes one prepared `message.created` frame to every
socket (in no particular order, as a server's followers come), MESSAGES times, SPACING seconds
apart, with nothing but `os.write` per socket. It prints its CPU time per write. Whatever a server
does beyond that write is its own cost; what this costs, every server here pays.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time

import orjson

READY = orjson.dumps({"type": "ready"})
SUBSCRIBED = orjson.dumps({"type": "subscribed", "id": "s", "last_seq": 0, "replayed": 0})


def frame(payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    return b"\x81\x7e" + n.to_bytes(2, "big") + payload


class Peer(asyncio.Protocol):
    def __init__(self, ready: list[Peer]) -> None:
        self.ready = ready
        self.buffer = b""
        self.stage = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buffer += data
        if self.stage == 0 and b"\r\n\r\n" in self.buffer:
            self.buffer = self.buffer.split(b"\r\n\r\n", 1)[1]
            self.transport.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
            )
            self.stage = 1
        while self.stage in (1, 2) and len(self.buffer) >= 2:
            length = self.buffer[1] & 0x7F
            head = 2 + (2 if length == 126 else 0) + 4
            if length == 126 and len(self.buffer) >= 4:
                length = int.from_bytes(self.buffer[2:4], "big")
            if len(self.buffer) < head + length:
                return
            self.buffer = self.buffer[head + length :]
            self.transport.write(frame(READY if self.stage == 1 else SUBSCRIBED))
            self.stage += 1
            if self.stage == 3:
                self.ready.append(self)


async def main(port: int, sockets: int, messages: int, spacing: float) -> None:
    peers: list[Peer] = []
    server = await asyncio.get_running_loop().create_server(
        lambda: Peer(peers), "127.0.0.1", port, backlog=4096
    )
    print("listening", flush=True)
    while len(peers) < sockets:
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)
    fds = [p.transport.get_extra_info("socket").fileno() for p in peers if p.transport is not None]
    random.shuffle(fds)
    started = os.times()
    for seq in range(1, messages + 1):
        data = frame(
            orjson.dumps(
                {
                    "type": "message.created",
                    "conversation_id": "c",
                    "seq": seq,
                    "message": {"content": "x" * 300},
                }
            )
        )
        for fd in fds:
            os.write(fd, data)
        await asyncio.sleep(spacing)
    ended = os.times()
    writes = len(fds) * messages
    user = (ended.user - started.user) / writes * 1e6
    system = (ended.system - started.system) / writes * 1e6
    print(f"{user + system:.2f} {system:.2f}", flush=True)
    server.close()


if __name__ == "__main__":
    port, sockets, messages, spacing = (
        int(sys.argv[1]),
        int(sys.argv[2]),
        int(sys.argv[3]),
        float(sys.argv[4]),
    )
    try:
        import uvloop

        uvloop.run(main(port, sockets, messages, spacing))
    except ImportError:
        asyncio.run(main(port, sockets, messages, spacing))
    time.sleep(0.1)
