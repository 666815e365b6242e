"""The measurements of bench/run.py that compare the server with the floor of its stack, and the
bytes it sends: `GET /healthz` at 50 connections (what uvicorn, the framework and this client cost
with no work behind them), batch appends, and reloads with and without compression."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.client import Connection
    from bench.run import Bench

# What a browser sends (Chromium 123+), and each coding alone.
BROWSER_ENCODINGS = "gzip, deflate, br, zstd"
CODINGS = ("identity", "gzip", "br", "zstd")


async def rate(
    bench: Bench, connections: int, per_connection: int, request: Callable[[Connection], Awaitable[None]]
) -> float:
    """Requests a second with `connections` keep-alive connections, each sending `per_connection`
    requests one after the other."""

    async def client() -> None:
        async with bench.connection() as conn:
            for _ in range(per_connection):
                await request(conn)

    bench.meter.start()
    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    bench.cost = bench.meter.per(connections * per_connection, "req")
    return connections * per_connection / elapsed


async def floor(bench: Bench, connections: int = 50) -> float:
    """`GET /healthz` a second: the floor of the stack."""

    async def healthz(conn: Connection) -> None:
        status, body = await conn.request("GET", "/healthz")
        if status != 200:
            raise RuntimeError(f"/healthz answered {status}: {body[:300]!r}")

    await rate(bench, connections, 10, healthz)  # connections open, code paths warm
    return await rate(bench, connections, 30 if bench.quick else 100, healthz)


async def batches(bench: Bench, clients: int, per_client: int, size: int = 100) -> float:
    """Messages a second appended `size` to a request, each client to its own conversation."""
    conversations = [await bench.conversation() for _ in range(clients)]

    async def client(cid: str) -> None:
        async with bench.connection() as conn:
            for _ in range(per_client):
                body = {
                    "messages": [
                        {
                            "id": uuid.uuid4().hex,
                            "role": "user",
                            "content": f"batch {i} " + "lorem ipsum " * 10,
                        }
                        for i in range(size)
                    ]
                }
                path = f"/v1/conversations/{cid}/messages:batch"
                status, answer = await conn.request("POST", path, json=body, headers=bench.headers)
                if status != 201:
                    raise RuntimeError(f"batch append answered {status}: {answer[:300]!r}")

    bench.meter.start()
    started = time.perf_counter()
    await asyncio.gather(*(client(cid) for cid in conversations))
    elapsed = time.perf_counter() - started
    bench.cost = bench.meter.per(clients * per_client * size, "msg")
    return clients * per_client * size / elapsed


async def reload_bytes(bench: Bench, cid: str) -> dict[str, tuple[int, str]]:
    """The bytes of one reload (conversation + latest 50) as sent, and the coding the server chose,
    for each coding asked alone and for a browser's Accept-Encoding."""
    sizes: dict[str, tuple[int, str]] = {}
    async with bench.connection() as conn:
        for asked in (*CODINGS, BROWSER_ENCODINGS):
            headers = {**bench.headers, "Accept-Encoding": asked}
            status, body = await conn.request("GET", f"/v1/conversations/{cid}?messages=50", headers=headers)
            if status != 200:
                raise RuntimeError(f"reload answered {status}: {body[:300]!r}")
            sizes[asked] = (len(body), conn.response_headers.get("content-encoding", "identity"))
    return sizes


async def reload_rate(bench: Bench, cid: str, encodings: str | None, connections: int = 50) -> float:
    """Reloads a second at `connections` connections, asking for `encodings` (None: no header)."""
    headers = dict(bench.headers)
    if encodings is not None:
        headers["Accept-Encoding"] = encodings
    path = f"/v1/conversations/{cid}?messages=50"

    async def reload(conn: Connection) -> None:
        status, body = await conn.request("GET", path, headers=headers)
        if status != 200:
            raise RuntimeError(f"reload answered {status}: {body[:300]!r}")

    return await rate(bench, connections, 10 if bench.quick else 20, reload)
