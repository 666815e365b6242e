"""chatkeep benchmarks: the real server in a subprocess, driven over HTTP from this process.

    python bench/run.py                      # SQLite, PostgreSQL, Redis (ephemeral conversations)
    python bench/run.py --backends sqlite    # one backend
    python bench/run.py --quick              # smaller runs, for a smoke check

Reports medians and percentiles measured in one run; the client and the server share the machine,
so absolute numbers are a floor, and the ratios between rows are what to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import services  # noqa: E402
from tests.conftest import drop_keys, drop_schema  # noqa: E402
from tests.server import ServerProcess  # noqa: E402

from bench import cpu, realtime, wire  # noqa: E402
from bench.client import Connection  # noqa: E402


@dataclass
class Result:
    name: str
    values: dict[str, str]
    rate: float = 0.0  # requests or messages a second, where the row has one


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


class Bench:
    def __init__(self, url: str, quick: bool, mode: str, pid: int | None = None) -> None:
        self.url = url
        self.meter = cpu.Meter(pid)
        self.cost: dict[str, str] = {}  # the CPU per request or message of the last rate measured
        self.quick = quick
        self.mode = mode
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        self.client = httpx.AsyncClient(base_url=url, timeout=60, limits=limits)
        self.headers: dict[str, str] = {}

    async def start(self) -> None:
        token = (await self.client.get("/v1/dev/token", params={"user": "bench"})).json()["token"]
        self.headers = {"Authorization": f"Bearer {token}"}

    async def conversation(self) -> str:
        cid = str(uuid.uuid4())  # a user token chooses random UUID ids only
        body = {"workspace": "bench", "id": cid, "mode": self.mode}
        response = await self.client.post("/v1/conversations", json=body, headers=self.headers)
        response.raise_for_status()
        return cid

    def connection(self) -> Connection:
        host, _, port = self.url.removeprefix("http://").partition(":")
        return Connection(host, int(port))

    async def append(self, conn: Connection, cid: str, text: str) -> float:
        started = time.perf_counter()
        status, body = await conn.request(
            "POST",
            f"/v1/conversations/{cid}/messages",
            json={"id": uuid.uuid4().hex, "role": "user", "content": text},
            headers=self.headers,
        )
        elapsed = time.perf_counter() - started
        if status != 201:
            raise RuntimeError(f"append answered {status}: {body[:300]!r}")
        return elapsed

    async def appends(self, clients: int, per_client: int) -> Result:
        conversations = [await self.conversation() for _ in range(clients)]
        latencies: list[float] = []

        async def client(cid: str) -> None:
            async with self.connection() as conn:
                for i in range(per_client):
                    latencies.append(await self.append(conn, cid, f"message {i} " + "lorem ipsum " * 10))

        self.meter.start()
        started = time.perf_counter()
        await asyncio.gather(*(client(cid) for cid in conversations))
        elapsed = time.perf_counter() - started
        total = clients * per_client
        self.cost = self.meter.per(total, "msg")
        return Result(
            f"append, {clients} client{'s' if clients > 1 else ''}",
            {
                "throughput": f"{total / elapsed:,.0f} msg/s",
                "p50": ms(statistics.median(latencies)),
                "p99": ms(percentile(latencies, 99)),
                "n": str(total),
                **self.cost,
            },
            total / elapsed,
        )

    async def seed(self, cid: str, count: int) -> None:
        """Fill a conversation through the batch endpoint, 100 messages a request, 4 requests at a time."""
        batches = [
            {
                "messages": [
                    {
                        "id": f"s{i + j}",
                        "role": "user" if (i + j) % 2 else "assistant",
                        "content": f"seed {i + j} " * 8,
                    }
                    for j in range(min(100, count - i))
                ]
            }
            for i in range(0, count, 100)
        ]
        semaphore = asyncio.Semaphore(4)

        async def send(batch: dict[str, Any]) -> None:
            async with semaphore:
                response = await self.client.post(
                    f"/v1/conversations/{cid}/messages:batch", json=batch, headers=self.headers
                )
                response.raise_for_status()

        await asyncio.gather(*(send(b) for b in batches))

    async def timed(self, conn: Connection, path: str, repeats: int) -> list[float]:
        samples = []
        for _ in range(repeats):
            started = time.perf_counter()
            status, body = await conn.request("GET", path, headers=self.headers)
            samples.append(time.perf_counter() - started)
            if status != 200:
                raise RuntimeError(f"GET {path} answered {status}: {body[:300]!r}")
        return samples

    async def reloads(self, lengths: list[int]) -> list[Result]:
        conversations = {}
        for length in lengths:
            cid = await self.conversation()
            seeding = time.perf_counter()
            await self.seed(cid, length)
            print(f"    seeded {length:,} messages in {time.perf_counter() - seeding:.1f} s", file=sys.stderr)
            conversations[length] = cid
        repeats = 50 if self.quick else 200
        rounds: dict[int, list[float]] = {length: [] for length in lengths}
        # Interleave the lengths so that machine noise hits each of them alike.
        async with self.connection() as conn:
            for _ in range(4):
                for length, cid in conversations.items():
                    rounds[length] += await self.timed(
                        conn, f"/v1/conversations/{cid}?messages=50", repeats // 4
                    )
        # vs 10: the acceptance ratio; vs 50: the same answer size (50 messages), so only the
        # history length differs.
        base = statistics.median(rounds[10])
        same_size = statistics.median(rounds[50])
        return [
            Result(
                f"reload read (conversation + latest 50), {length:,} messages",
                {
                    "p50": ms(statistics.median(samples)),
                    "p99": ms(percentile(samples, 99)),
                    "vs 10": f"{statistics.median(samples) / base:.2f}x",
                    "vs 50": f"{statistics.median(samples) / same_size:.2f}x",
                    "n": str(len(samples)),
                },
            )
            for length, samples in rounds.items()
        ]

    async def compression(self) -> list[Result]:
        """Bytes of a reload of 50 messages by coding, and reloads a second with a browser's
        Accept-Encoding against none (alternated, medians of three)."""
        cid = await self.conversation()
        await self.seed(cid, 50)
        sizes = await wire.reload_bytes(self, cid)
        plain, compressed = [], []
        for _ in range(3):
            plain.append(await wire.reload_rate(self, cid, None))
            compressed.append(await wire.reload_rate(self, cid, wire.BROWSER_ENCODINGS))
        identity = sizes["identity"][0]
        results = [
            Result(
                f"reload of 50 messages, Accept-Encoding: {asked}",
                {"bytes": f"{size:,} B ({coding}, {size / identity:.0%})"},
            )
            for asked, (size, coding) in sizes.items()
        ]
        results.append(
            Result(
                "reload of 50 messages at 50 connections, no Accept-Encoding",
                {"throughput": f"{statistics.median(plain):,.0f} req/s"},
            )
        )
        cost = 1 - statistics.median(compressed) / statistics.median(plain)
        results.append(
            Result(
                f"reload of 50 messages at 50 connections, Accept-Encoding: {wire.BROWSER_ENCODINGS}",
                {"throughput": f"{statistics.median(compressed):,.0f} req/s", "cost": f"{cost:.1%}"},
            )
        )
        return results

    async def run(self) -> list[Result]:
        await self.start()
        # The floor is measured before the appends and again after them, and the rates are shown
        # against the mean of the two, so that a machine whose speed drifts during the run (other
        # work on it, its clock) moves the floor and the appends alike.
        before = await wire.floor(self)
        cost = self.cost
        appends = []
        per_client_single = 300 if self.quick else 1000
        per_client_many = 20 if self.quick else 100
        for clients, per_client in ((1, per_client_single), (50, per_client_many)):
            appends.append(await self.appends(clients, per_client))
        batched = await wire.batches(self, 4, 5 if self.quick else 25)
        batch_cost = self.cost
        after = await wire.floor(self)
        floor = (before + after) / 2
        values = {
            "throughput": f"{floor:,.0f} req/s",
            **cost,
            "before and after the appends": f"{before:,.0f} and {after:,.0f} req/s",
        }
        results = [Result("GET /healthz, 50 connections (the floor)", values)]
        for result in appends:
            result.values["vs floor"] = f"{result.rate / floor:.0%}"
            results.append(result)
        results.append(
            Result(
                "batch append (100 a request), 4 clients",
                {"throughput": f"{batched:,.0f} msg/s", "vs floor": f"{batched / floor:.0%}", **batch_cost},
            )
        )
        lengths = [10, 50, 1_000, 10_000] if self.quick else [10, 50, 1_000, 100_000]
        results += await self.reloads(lengths)
        results += await self.compression()
        await self.client.aclose()
        return results


def backend_env(name: str, tmp: Path) -> tuple[dict[str, str], str, Callable[[], Awaitable[None]] | None]:
    """Settings for the server, the persistence mode to create conversations in, and a cleanup."""
    if name == "redis":
        url = services.redis()
        if url is None:
            raise SystemExit(f"Redis is not reachable at {services.REDIS_URL}")
        prefix = f"ck-bench-{uuid.uuid4().hex[:8]}"
        env = {
            "CHATKEEP_DURABLE_URL": f"sqlite:///{tmp}/bench-redis.db",
            "CHATKEEP_EPHEMERAL_URL": f"{url}?prefix={prefix}",
        }
        return env, "ephemeral", lambda: drop_keys(services.REDIS_URL, prefix)
    durable, cleanup = backend_url(name, tmp)
    return {"CHATKEEP_DURABLE_URL": durable}, "durable", cleanup


def backend_url(name: str, tmp: Path) -> tuple[str, Callable[[], Awaitable[None]] | None]:
    if name == "sqlite":
        return f"sqlite:///{tmp}/bench.db", None
    if name == "memory":  # no store cost: what the HTTP path and the service cost alone
        return "memory://", None
    if name == "postgres":
        url = services.postgres()
        if url is None:
            raise SystemExit(f"PostgreSQL is not reachable at {services.POSTGRES_URL}")
        schema = f"ck_bench_{uuid.uuid4().hex[:8]}"
        return f"{url}?schema={schema}", lambda: drop_schema(schema)
    raise SystemExit(f"unknown backend {name!r}; use sqlite, postgres, redis or memory")


def server_env(stores: dict[str, str]) -> dict[str, str]:
    return {
        **stores,
        "CHATKEEP_USER_RATE_PER_SECOND": "0",
        "CHATKEEP_MAX_MESSAGES_PER_CONVERSATION": "200000",
        "CHATKEEP_LOG_LEVEL": "warning",
    }


async def bench_backend(name: str, quick: bool, tmp: Path) -> list[Result]:
    stores, mode, cleanup = backend_env(name, tmp)
    server = ServerProcess(server_env(stores), tmp / f"{name}.log").start()
    try:
        pid = server.process.pid if server.process else None
        return await Bench(server.url, quick, mode, pid).run()
    finally:
        server.stop()
        if cleanup is not None:
            await cleanup()


COLUMNS = ("throughput", "vs floor", "p50", "p99")


def table(backend: str, results: list[Result]) -> str:
    """Markdown: the rates, their ratio to the floor and latencies in columns, the rest in the last."""
    head = ["measurement", *COLUMNS, "other"]
    lines = [f"**{backend}**", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        cells = [r.values.get(c, "") for c in COLUMNS]
        other = ", ".join(f"{k} {v}" for k, v in r.values.items() if k not in COLUMNS)
        lines.append("| " + " | ".join([r.name, *cells, other]) + " |")
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backends", default="sqlite,postgres,redis")
    parser.add_argument("--quick", action="store_true", help="smaller runs")
    parser.add_argument(
        "--sockets", type=int, default=1000, help="WebSocket followers (0 skips the real-time run)"
    )
    args = parser.parse_args()
    import tempfile

    started = time.perf_counter()
    out = []
    with tempfile.TemporaryDirectory(prefix="chatkeep-bench-") as tmp:
        for backend in args.backends.split(","):
            print(f"benchmarking {backend} ...", file=sys.stderr)
            results = await bench_backend(backend, args.quick, Path(tmp))
            out.append(table(backend, results))
            print(out[-1] + "\n", flush=True)
        if args.sockets:
            print("benchmarking real-time delivery ...", file=sys.stderr)
            rows = await realtime.run(Path(tmp), sockets=args.sockets, messages=20 if args.quick else 40)
            print(realtime.table(rows) + "\n", flush=True)
    print(f"total time {time.perf_counter() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())
