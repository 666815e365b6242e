"""Real-time benchmark: one server, 1,000 sockets following one conversation.

Measures the server's memory per idle connection (its resident memory before and after the sockets
connect, authenticate and subscribe) and the delivery latency of a message appended over HTTP to
every socket (from just before the append is sent to the moment each socket has the event).
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from pathlib import Path

import httpx
import orjson
from tests.server import ServerProcess
from websockets.asyncio.client import ClientConnection, connect

from bench.client import Connection


def resident_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def follower(url: str, token: str, cid: str) -> ClientConnection:
    ws = await connect(url, max_queue=None, compression=None)
    await ws.send(orjson.dumps({"type": "auth", "token": token}).decode())
    await ws.recv()
    await ws.send(orjson.dumps({"type": "subscribe", "id": "s", "conversation_id": cid}).decode())
    await ws.recv()
    return ws


async def run(tmp: Path, sockets: int = 1000, messages: int = 40) -> list[tuple[str, str]]:
    env = {
        "CHATKEEP_DURABLE_URL": f"sqlite:///{tmp}/realtime.db",
        "CHATKEEP_USER_RATE_PER_SECOND": "0",
        "CHATKEEP_LOG_LEVEL": "warning",
    }
    server = ServerProcess(env, tmp / "realtime.log").start()
    assert server.process is not None
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            token = (await http.get("/v1/dev/token", params={"user": "bench"})).json()["token"]
            headers = {"Authorization": f"Bearer {token}"}
            cid = f"rt-{uuid.uuid4().hex[:10]}"
            await http.post("/v1/conversations", json={"workspace": "bench", "id": cid}, headers=headers)
            ws_url = server.url.replace("http://", "ws://") + "/v1/ws"
            warm = await follower(ws_url, token, cid)  # the first connection pays for imports and caches
            await warm.close()
            await asyncio.sleep(0.5)
            before = resident_kib(server.process.pid)
            followers: list[ClientConnection] = []
            for start in range(0, sockets, 100):
                followers += await asyncio.gather(
                    *(follower(ws_url, token, cid) for _ in range(start, min(sockets, start + 100)))
                )
            await asyncio.sleep(1.0)
            after = resident_kib(server.process.pid)

            latencies: list[float] = []
            host, _, port = server.url.removeprefix("http://").partition(":")
            async with Connection(host, int(port)) as poster:
                for i in range(messages):
                    started = time.perf_counter()
                    arrivals = [asyncio.create_task(_arrival(ws)) for ws in followers]
                    status, _ = await poster.request(
                        "POST",
                        f"/v1/conversations/{cid}/messages",
                        json={"id": f"m{i}", "role": "user", "content": f"message {i}"},
                        headers=headers,
                    )
                    if status != 201:
                        raise RuntimeError(f"append answered {status}")
                    for arrived in await asyncio.gather(*arrivals):
                        latencies.append(arrived - started)
            for ws in followers:
                await ws.close()
    finally:
        server.stop()
    ordered = sorted(latencies)
    p50, p99 = statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.99) - 1] * 1000
    delivery = (
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms; "
        f"until the last socket has it: p50 {_last_of_each(latencies, sockets):.1f} ms; n {len(ordered):,}"
    )
    return [
        (f"delivery of a message to {sockets:,} sockets on one instance", delivery),
        (
            "server memory per idle connection (authenticated, subscribed)",
            f"{(after - before) / sockets:.1f} KiB",
        ),
    ]


async def _arrival(ws: ClientConnection) -> float:
    while True:
        frame = orjson.loads(await ws.recv())
        if frame.get("type") == "message.created":
            return time.perf_counter()


def _last_of_each(latencies: list[float], sockets: int) -> float:
    """The median, over messages, of the time until the last socket had it."""
    lasts = [max(latencies[i : i + sockets]) for i in range(0, len(latencies), sockets)]
    return statistics.median(lasts) * 1000


def table(rows: list[tuple[str, str]]) -> str:
    lines = ["**Real-time (WebSocket)**", "", "| measurement | result |", "|---|---|"]
    return "\n".join(lines + [f"| {name} | {value} |" for name, value in rows])
