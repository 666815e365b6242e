"""The HTTP protocol chatkeep runs under uvicorn: uvicorn's httptools one with a read deadline.

uvicorn closes a keep-alive connection idle between requests, but waits forever for a request that
arrives a byte at a time (slowloris): each such connection holds a socket, and with them a share of
the concurrency limit, for as long as the client likes. Here a request must arrive whole (request
line, headers and body) within CHATKEEP_REQUEST_READ_TIMEOUT_SECONDS of its first byte, or of the
connection opening: past it, the server answers 408 (problem+json, `request_timeout`) and closes the
connection. A response that has begun is not interrupted by the deadline; only the connection is
closed. WebSocket upgrades leave the deadline behind (the socket has its own auth and idle timeouts).

The close lingers: the 408 is followed by the end of the server's half of the stream, and what the
client still sends is read and dropped for a moment before the socket closes. Closing at once, with
the client's bytes still arriving, would reset the connection, and a reset can discard the 408
before the client reads it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


def _timeout_response(seconds: float) -> bytes:
    body = orjson.dumps(
        {
            "type": "urn:chatkeep:problem:request_timeout",
            "title": "Request Timeout",
            "status": 408,
            "detail": f"the request did not arrive whole within {seconds:g} s",
            "code": "request_timeout",
        }
    )
    head = (
        "HTTP/1.1 408 Request Timeout\r\n"
        "content-type: application/problem+json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


LINGER_SECONDS = 2.0


class DeadlineHttpProtocol(HttpToolsProtocol):
    """Set `read_timeout` on a subclass (see `http_protocol`)."""

    read_timeout: float = 30.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_deadline: asyncio.TimerHandle | None = None
        self._lingering = False

    def _arm(self) -> None:
        if self._read_deadline is None:
            self._read_deadline = self.loop.call_later(self.read_timeout, self._read_timed_out)

    def _disarm(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _read_timed_out(self) -> None:
        self._read_deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is None or cycle.response_complete or not cycle.response_started:
            if cycle is not None and not cycle.response_complete:
                cycle.disconnected = True  # the app's late answer goes nowhere
                cycle.message_event.set()
            self.transport.write(_timeout_response(self.read_timeout))
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self.transport.write_eof()
        self._lingering = True
        self.loop.call_later(min(LINGER_SECONDS, self.read_timeout), self.transport.close)

    def data_received(self, data: bytes) -> None:
        if not self._lingering:
            super().data_received(data)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def handle_websocket_upgrade(self) -> None:
        self._disarm()
        super().handle_websocket_upgrade()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def http_protocol(read_timeout: float) -> type[DeadlineHttpProtocol]:
    """The protocol class with this deadline (uvicorn builds protocols from a class)."""
    return type("HttpProtocol", (DeadlineHttpProtocol,), {"read_timeout": read_timeout})
