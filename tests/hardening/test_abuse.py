"""The abuse suite: a real server (its own process) flooded, in bounded loops, by users of its tenant
with bad frames, deltas, sockets, subscriptions and memory writes, while another user reloads a
conversation. Figures are printed (latency of the other user before and during, what each flood got,
the server's memory); the assertions are on the caps and on the server still serving everyone, not
on wall-clock time."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import sys
import time
from asyncio.subprocess import PIPE
from collections import Counter
from pathlib import Path

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from chatkeep.api.ws.connection import REFUSALS_BEFORE_CLOSE
from tests.conftest import report
from tests.server import ServerProcess

RATE, BURST = 2.0, 200  # per user: what each flooding user can spend
MAX_SUBSCRIPTIONS = 50
SOCKETS_PER_USER = 20
MEMORY_TENANT_BUDGET = 4 * 1024 * 1024  # bytes of `none` conversations one tenant may hold
ENV = {
    "CHATKEEP_MEMORY_MAX_TENANT_BYTES": str(MEMORY_TENANT_BUDGET),
    "CHATKEEP_USER_RATE_PER_SECOND": str(RATE),
    "CHATKEEP_USER_RATE_BURST": str(BURST),
    "CHATKEEP_WS_MAX_SUBSCRIPTIONS": str(MAX_SUBSCRIPTIONS),
    "CHATKEEP_WS_MAX_SOCKETS_PER_USER": str(SOCKETS_PER_USER),
    "CHATKEEP_LOG_LEVEL": "warning",
}


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


PROBE = """
import json, sys, threading, time
import httpx
url, token, path, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
stop = threading.Event()
if count == 0:  # until stdin closes
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
samples = []
with httpx.Client(base_url=url, headers={"Authorization": "Bearer " + token}, timeout=30) as client:
    while (len(samples) < count) if count else (not stop.is_set() or len(samples) < 3):
        started = time.perf_counter()
        status = client.get(path, params={"limit": 50}).status_code
        samples.append([status, time.perf_counter() - started])
        time.sleep(0.05)
print(json.dumps(samples))
"""


class Victim:
    """Another user of the tenant reloading a conversation (its last 50 messages), paced well under
    its own rate, from a process of its own so that the flooding clients do not delay it."""

    def __init__(self, url: str, token: str, cid: str) -> None:
        self.args = [url, token, f"/v1/conversations/{cid}/messages"]
        self.statuses: Counter[int] = Counter()

    async def start(self, count: int) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-c", PROBE, *self.args, str(count), stdin=PIPE, stdout=PIPE
        )

    async def finish(self, probe: asyncio.subprocess.Process) -> list[float]:
        assert probe.stdin is not None
        probe.stdin.close()  # the probe's signal to stop (communicate() without input leaves it open)
        out, _ = await asyncio.wait_for(probe.communicate(), 120)
        samples = orjson.loads(out)
        self.statuses.update(status for status, _ in samples)
        return [seconds for _, seconds in samples]

    async def sample(self, count: int) -> list[float]:
        return await self.finish(await self.start(count))


async def token_of(http: httpx.AsyncClient, user: str) -> str:
    answer = await http.get("/v1/dev/token", params={"user": user})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["token"])


async def opened(ws_url: str, token: str) -> tuple[ClientConnection, int | None]:
    """A socket and None once `ready`, or the close code the server answered its auth with."""
    ws = await connect(ws_url, max_size=None)
    await ws.send(orjson.dumps({"type": "auth", "token": token}).decode())
    try:
        frame = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
        assert frame["type"] == "ready", frame
        return ws, None
    except ConnectionClosed as closed:
        assert closed.rcvd is not None
        return ws, closed.rcvd.code


async def replies(ws: ClientConnection, count: int) -> Counter[str]:
    """The codes (or types) of the next `count` answers to frames sent on this socket."""
    got: Counter[str] = Counter()
    while sum(got.values()) < count:
        frame = orjson.loads(await asyncio.wait_for(ws.recv(), 30))
        if frame.get("id") is not None or frame["type"] == "error":
            got[frame.get("code") or frame["type"]] += 1
    return got


async def flood(ws: ClientConnection, frames: list[str]) -> Counter[str]:
    """Send every frame until the server closes the socket; count the answers and how it closed."""
    got: Counter[str] = Counter()

    async def read() -> None:
        try:
            while sum(got.values()) < len(frames):
                frame = orjson.loads(await asyncio.wait_for(ws.recv(), 30))
                if frame.get("id") is not None or frame["type"] == "error":
                    got[frame.get("code") or frame["type"]] += 1
        except ConnectionClosed as closed:
            got[f"closed {closed.rcvd.code if closed.rcvd else None}"] += 1

    reading = asyncio.create_task(read())
    with contextlib.suppress(ConnectionClosed):
        for frame in frames:
            await ws.send(frame)
    await reading
    await ws.close()
    return got


async def flood_bad_frames(ws_url: str, token: str, per_socket: int = 1500) -> Counter[str]:
    garbage = [
        "not json at all",
        '{"type": "nope", "id": "b"}',
        '{"type": "subscribe", "id": "b", "conversation_id": "a/b"}',
        '{"type": "ping", "id": "b", "id": "c"}',
        '{"type": "append", "id": "b", "conversation_id": "x", "message": {"role": "owner"}}',
    ]
    frames = [garbage[i % len(garbage)] for i in range(per_socket)]
    sockets = [await opened(ws_url, token) for _ in range(2)]  # both before the allowance is spent
    assert [refused for _, refused in sockets] == [None, None]
    total: Counter[str] = Counter()
    for got in await asyncio.gather(*(flood(ws, frames) for ws, _ in sockets)):
        total += got
    return total


async def flood_deltas(ws_url: str, token: str, target: str, per_socket: int = 2000) -> Counter[str]:
    sockets = [await opened(ws_url, token) for _ in range(2)]
    assert [refused for _, refused in sockets] == [None, None]

    def frames(n: int) -> list[str]:
        return [
            orjson.dumps(
                {"type": "stream.delta", "id": f"d{i}", "conversation_id": target, "message_id": f"m{n}-{i}"}
                | {"text": "x" * 64}
            ).decode()
            for i in range(per_socket)
        ]

    total: Counter[str] = Counter()
    for got in await asyncio.gather(*(flood(ws, frames(n)) for n, (ws, _) in enumerate(sockets))):
        total += got
    return total


async def flood_sockets(ws_url: str, token: str, count: int = 30) -> Counter[str]:
    results = [await opened(ws_url, token) for _ in range(count)]
    outcome = Counter("ready" if code is None else f"closed {code}" for _, code in results)
    for ws, _ in results:
        await ws.close()
    return outcome


async def flood_subscriptions(ws_url: str, token: str, count: int = 80) -> Counter[str]:
    ws, refused = await opened(ws_url, token)
    assert refused is None
    for i in range(count):
        await ws.send(orjson.dumps({"type": "subscribe", "id": f"s{i}", "workspace": f"w{i}"}).decode())
    got = await replies(ws, count)
    await ws.close()
    return got


async def flood_memory(http: httpx.AsyncClient, token: str, attempts: int = 300) -> Counter[int]:
    headers = {"Authorization": f"Bearer {token}"}
    created = await http.post("/v1/conversations", json={"workspace": "w1", "mode": "none"}, headers=headers)
    assert created.status_code == 201, created.text
    cid = created.json()["id"]
    statuses: Counter[int] = Counter()
    body = {"role": "user", "content": "m" * 60_000}
    for _ in range(attempts):
        answer = await http.post(f"/v1/conversations/{cid}/messages", json=body, headers=headers)
        statuses[answer.status_code] += 1
    return statuses


async def test_floods_leave_the_server_serving_everyone(tmp_path: Path) -> None:
    env = {**ENV, "CHATKEEP_DURABLE_URL": f"sqlite:///{tmp_path}/abuse.db"}
    with ServerProcess(env, tmp_path / "server.log") as server:
        assert server.process is not None
        ws_url = server.url.replace("http://", "ws://") + "/v1/ws"
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            victim_token = await token_of(http, "victim")
            headers = {"Authorization": f"Bearer {victim_token}"}
            cid = (await http.post("/v1/conversations", json={"workspace": "w1"}, headers=headers)).json()[
                "id"
            ]
            batch = [{"role": "user", "content": f"message {i} " * 20} for i in range(50)]
            answer = await http.post(
                f"/v1/conversations/{cid}/messages:batch", json={"messages": batch}, headers=headers
            )
            assert answer.status_code == 201, answer.text
            tokens = {
                kind: await token_of(http, f"mallory-{kind}")
                for kind in ("bad", "delta", "sock", "sub", "mem")
            }

            victim = Victim(server.url, victim_token, cid)
            rss_before = rss_kib(server.process.pid)
            before = await victim.sample(30)

            probe = await victim.start(0)  # samples until told to stop
            await asyncio.sleep(0.5)  # it has started
            started = time.monotonic()
            try:
                bad, deltas, sockets, subscriptions, memory = await asyncio.gather(
                    flood_bad_frames(ws_url, tokens["bad"]),
                    flood_deltas(ws_url, tokens["delta"], cid),
                    flood_sockets(ws_url, tokens["sock"]),
                    flood_subscriptions(ws_url, tokens["sub"]),
                    flood_memory(http, tokens["mem"]),
                )
            finally:
                elapsed = time.monotonic() - started
                during = await victim.finish(probe)
            rss_after = rss_kib(server.process.pid)
            metrics = (await http.get("/metrics")).text
            held = next(
                float(line.split()[-1])
                for line in metrics.splitlines()
                if line.startswith("chatkeep_memory_bytes_held")
            )
            after = await victim.sample(10)

    median_before, median_during = statistics.median(before), statistics.median(during)
    lines = [
        f"abuse: floods ran {elapsed:.1f} s against one server process",
        f"abuse: bad frames {dict(bad)}",
        f"abuse: deltas {dict(deltas)}",
        f"abuse: sockets {dict(sockets)}",
        f"abuse: subscriptions {dict(subscriptions)}",
        f"abuse: 60 KB writes to a `none` conversation {dict(memory)}",
        f"abuse: server RSS {rss_before / 1024:.1f} MiB before, {rss_after / 1024:.1f} MiB after; "
        f"memory-backed data held {held / 2**20:.2f} MiB "
        f"(the tenant's budget {MEMORY_TENANT_BUDGET / 2**20:.0f} MiB)",
        f"abuse: another user's reload (50 messages), median {median_before * 1000:.1f} ms unloaded, "
        f"{median_during * 1000:.1f} ms during the floods ({median_during / median_before:.2f}x, "
        f"{len(during)} samples), {statistics.median(after) * 1000:.1f} ms after",
    ]
    print("\n" + "\n".join(lines))
    for line in lines:
        report(line)

    allowance = BURST + RATE * elapsed + 1  # what one user may spend over the run
    # still serving: every request of the other user was answered, and answered 200
    assert victim.statuses == {200: len(before) + len(during) + len(after)}
    # bad frames and deltas naming messages that are not there: each charged; past the allowance
    # refused unread, and a socket that goes on regardless is closed (4429)
    for flooded in (bad, deltas):
        assert flooded["closed 4429"] == 2
        assert flooded["rate_limited"] >= 2 * (REFUSALS_BEFORE_CLOSE - 1)
        answered = sum(n for code, n in flooded.items() if code not in ("rate_limited", "closed 4429"))
        assert answered <= allowance
    assert set(deltas) <= {"rate_limited", "not_found", "message_not_found", "closed 4429"}
    # sockets: a user holds at most SOCKETS_PER_USER
    assert sockets == {"ready": SOCKETS_PER_USER, "closed 4409": 30 - SOCKETS_PER_USER}
    # subscriptions: at most MAX_SUBSCRIPTIONS per socket
    assert subscriptions == {
        "subscribed": MAX_SUBSCRIPTIONS,
        "too_many_subscriptions": 80 - MAX_SUBSCRIPTIONS,
    }
    # memory writes: bounded by the tenant's byte budget (507 storage_full past it) and the rate
    assert set(memory) <= {201, 429, 507} and memory[507] > 0
    assert memory[201] <= allowance
    assert held <= MEMORY_TENANT_BUDGET
