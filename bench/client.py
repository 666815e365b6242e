"""A minimal HTTP/1.1 keep-alive client for the benchmarks.

A general-purpose Python client spends about as long on a request as the server does, which would
hide the server's own cost. This one does only what the benchmarks need: one persistent connection,
a request line, a few headers, a JSON body, and a response read by Content-Length (its body
as sent: a compressed answer is not decoded).
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self.response_headers: dict[str, str] = {}  # of the last response, names in lower case

    async def __aenter__(self) -> Connection:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._writer is not None:
            self._writer.close()
            await self._writer.wait_closed()

    async def request(
        self, method: str, path: str, *, json: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        assert self._reader is not None and self._writer is not None
        body = b"" if json is None else orjson.dumps(json)
        lines = [
            f"{method} {path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            f"Content-Length: {len(body)}",
        ]
        if json is not None:
            lines.append("Content-Type: application/json")
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        head = await self._reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        headers = {}
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name:
                headers[name.strip().lower().decode()] = value.strip().decode()
        self.response_headers = headers
        length = int(headers.get("content-length", 0))
        return status, await self._reader.readexactly(length) if length else b""
