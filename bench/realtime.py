"""Real-time benchmark: one server, its followers spread over several client processes.

    python bench/realtime.py                       # 1,000 sockets, then 10,000 idle
    python bench/realtime.py --sockets 500 --idle 0 --messages 20

The server runs as `chatkeep serve` (SQLite) in its own process. The followers run in WORKERS
processes apart from it: bench/wsfollowers.c (compiled here; it costs little more than the kernel's
own work per frame), or the Python followers of bench/wsclient.py without a C compiler. Measured:

- server CPU per delivered frame: the server process's CPU time (user + system, from /proc) while
  messages are appended to a conversation that every socket follows, divided by the frames delivered;
  "fan-out only" first subtracts what the same appends cost with no follower at all;
- delivery latency: from just before an append is sent to the moment each socket has the event
  (CLOCK_MONOTONIC is shared by every process of the machine); messages are spaced so that one
  delivery does not queue behind the previous;
- memory per idle connection: the server's resident memory before and after the sockets connect,
  authenticate and subscribe, divided by their number (at 1,000 and at 10,000).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.server import ServerProcess  # noqa: E402

from bench.client import Connection  # noqa: E402

WORKERS = 4
SPACING = 0.1  # seconds between two appends of the delivery run
TICK = os.sysconf("SC_CLK_TCK")


def resident_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_times(pid: int) -> tuple[float, float]:
    """User and system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICK, int(fields[12]) / TICK


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    return sum(cpu_times(pid))


def raise_fd_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# -- the client processes ---------------------------------------------------------------------------


def worker(pipe: Pipe, host: str, port: int, token: str, cid: str) -> None:
    raise_fd_limit()
    try:
        import uvloop  # the cheapest event loop there is: receiving must cost the server's machine little

        uvloop.run(_worker(pipe, host, port, token, cid))
    except ImportError:
        asyncio.run(_worker(pipe, host, port, token, cid))


async def _worker(pipe: Pipe, host: str, port: int, token: str, cid: str) -> None:
    from bench.wsclient import LeanSocket, open_follower

    sockets: list[LeanSocket] = []
    arrivals: list[tuple[int, float]] = []

    def on_event(payload: bytes, arrived: float) -> None:
        if payload.startswith(b'{"type":"message.created"'):
            start = payload.index(b'"seq":') + 6
            arrivals.append((int(payload[start : payload.index(b",", start)]), arrived))

    while True:
        command, argument = await asyncio.to_thread(pipe.recv)
        if command == "connect":
            for start in range(0, argument, 100):
                batch = min(100, argument - start)
                sockets += await asyncio.gather(
                    *(open_follower(host, port, token, cid, on_event) for _ in range(batch))
                )
            pipe.send(len(sockets))
        elif command == "arrivals":
            pipe.send(arrivals[:])
            arrivals.clear()
        elif command == "cpu":
            times = os.times()
            pipe.send((times.user, times.system))
        elif command == "close":
            for sock in sockets:
                sock.close()
            await asyncio.sleep(0.2)
            pipe.send(len(sockets))
            return


class NativeWorkers:
    """The followers in WORKERS processes of bench/wsfollowers.c (compiled here with cc)."""

    def __init__(self, binary: Path, count: int, host: str, port: int, token: str, cid: str) -> None:
        self.processes = [
            subprocess.Popen(
                [str(binary), host, str(port), token, cid],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(count)
        ]

    def _say(self, process: subprocess.Popen[str], line: str) -> None:
        assert process.stdin is not None
        process.stdin.write(line + "\n")
        process.stdin.flush()

    def _line(self, process: subprocess.Popen[str]) -> str:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"a follower process ended (exit {process.wait()})")
        return line.strip()

    def connect(self, total: int) -> int:
        n = len(self.processes)
        for i, process in enumerate(self.processes):
            self._say(process, f"connect {total // n + (1 if i < total % n else 0)}")
        return sum(int(self._line(p).split()[1]) for p in self.processes)

    def ask(self, command: str, argument: Any = None) -> list[Any]:
        for process in self.processes:
            self._say(process, command)
        answers: list[Any] = []
        for process in self.processes:
            if command == "cpu":
                user, system = self._line(process).split()
                answers.append((float(user), float(system)))
            elif command == "arrivals":
                batch = []
                while (line := self._line(process)) != "end":
                    seq, at = line.split()
                    batch.append((int(seq), float(at)))
                answers.append(batch)
        return answers

    def close(self) -> None:
        for process in self.processes:
            with contextlib.suppress(Exception):
                self._say(process, "close")
        for process in self.processes:
            process.wait(10)


def native_followers(tmp: Path) -> Path | None:
    """bench/wsfollowers.c compiled, or None without a C compiler (the Python followers then)."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None
    binary = tmp / "wsfollowers"
    subprocess.run([compiler, "-O2", "-o", str(binary), str(ROOT / "bench" / "wsfollowers.c")], check=True)
    return binary


class Workers:
    """The followers in WORKERS Python processes of bench/wsclient.py."""

    def __init__(self, count: int, host: str, port: int, token: str, cid: str) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipes: list[Pipe] = []
        self.processes = []
        for _ in range(count):
            mine, theirs = context.Pipe()
            process = context.Process(target=worker, args=(theirs, host, port, token, cid), daemon=True)
            process.start()
            self.pipes.append(mine)
            self.processes.append(process)

    def ask(self, command: str, argument: Any = None) -> list[Any]:
        for pipe in self.pipes:
            pipe.send((command, argument))
        return [pipe.recv() for pipe in self.pipes]

    def connect(self, total: int) -> int:
        share = [
            total // len(self.pipes) + (1 if i < total % len(self.pipes) else 0)
            for i in range(len(self.pipes))
        ]
        for pipe, n in zip(self.pipes, share, strict=True):
            pipe.send(("connect", n))
        return sum(pipe.recv() for pipe in self.pipes)

    def close(self) -> None:
        self.ask("close")
        for process in self.processes:
            process.join(10)


# -- the run ----------------------------------------------------------------------------------------


async def post_spaced(
    server: tuple[str, int], cid: str, headers: dict[str, str], count: int
) -> dict[int, float]:
    """Append `count` messages SPACING apart; the send time of each, by the seq it was given."""
    sent: dict[int, float] = {}
    async with Connection(*server) as poster:  # a connection per run: an idle one times out
        for i in range(count):
            started = time.perf_counter()
            status, body = await poster.request(
                "POST",
                f"/v1/conversations/{cid}/messages",
                json={
                    "id": uuid.uuid4().hex,
                    "role": "user",
                    "content": f"message {i} " + "lorem ipsum " * 8,
                },
                headers=headers,
            )
            if status != 201:
                raise RuntimeError(f"append answered {status}: {body[:200]!r}")
            sent[orjson.loads(body)["seq"]] = started
            await asyncio.sleep(max(0.0, SPACING - (time.perf_counter() - started)))
    return sent


def profiler(pid: int, out: str | None) -> subprocess.Popen[bytes] | None:
    """A sampler of the server during the delivery run, when asked for: `perf record` (kernel and
    native stacks) for a name ending in .perf, py-spy (Python stacks, collapsed) otherwise."""
    if out is None:
        return None
    if out.endswith(".perf"):
        command = ["perf", "record", "-e", "cpu-clock", "-g", "-p", str(pid), "-o", out]
    elif out.endswith(".strace"):
        command = ["strace", "-c", "-f", "-p", str(pid), "-o", out]
    else:
        command = ["py-spy", "record", "--pid", str(pid), "--format", "raw", "--rate", "500", "--output", out]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def run(
    tmp: Path,
    sockets: int = 1000,
    messages: int = 40,
    idle: int = 10_000,
    profile: str | None = None,
    implementation: str = "chatkeep",
    native: bool = True,
) -> list[tuple[str, str]]:
    raise_fd_limit()
    env = {
        "CHATKEEP_DURABLE_URL": f"sqlite:///{tmp}/realtime.db",
        "CHATKEEP_USER_RATE_PER_SECOND": "0",
        "CHATKEEP_WS_MAX_SOCKETS_PER_USER": "0",  # every follower is the same user
        "CHATKEEP_MAX_CONNECTIONS": "0",  # 10,000 sockets, and HTTP appends besides
        "CHATKEEP_LOG_LEVEL": "warning",
    }
    command = [sys.executable, str(ROOT / "bench" / "serve.py"), implementation]
    if os.environ.get("RT_SERVE"):
        command = [sys.executable, os.environ["RT_SERVE"]]
    server = ServerProcess(env, tmp / "realtime.log", command=command).start()
    assert server.process is not None
    pid = server.process.pid
    host, _, port_text = server.url.removeprefix("http://").partition(":")
    port = int(port_text)
    server_at = (host, port)
    rows: list[tuple[str, str]] = []
    workers: Workers | NativeWorkers | None = None
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            token = (await http.get("/v1/dev/token", params={"user": "bench"})).json()["token"]
            headers = {"Authorization": f"Bearer {token}"}
            quiet, cid = str(uuid.uuid4()), str(uuid.uuid4())
            for c in (quiet, cid):
                await http.post("/v1/conversations", json={"workspace": "bench", "id": c}, headers=headers)

        # What the appends cost on their own: the same traffic to a conversation nobody follows.
        await post_spaced(server_at, quiet, headers, 10)
        started = cpu_seconds(pid)
        await post_spaced(server_at, quiet, headers, messages)
        append_cpu = (cpu_seconds(pid) - started) / messages

        binary = native_followers(tmp) if native else None
        workers = (
            NativeWorkers(binary, WORKERS, host, port, token, cid)
            if binary is not None
            else Workers(WORKERS, host, port, token, cid)
        )
        kind = "C" if binary is not None else "Python"
        workers.connect(WORKERS)  # the first connections pay for imports and caches
        await asyncio.sleep(1.0)
        before = resident_kib(pid)
        connected = workers.connect(sockets - WORKERS)  # the total so far
        await asyncio.sleep(1.0)
        at_sockets = resident_kib(pid)

        await post_spaced(server_at, cid, headers, 3)  # warm the delivery path
        await asyncio.sleep(0.5)
        workers.ask("arrivals")
        clients_before = workers.ask("cpu")
        started = cpu_seconds(pid)
        started_system = cpu_times(pid)[1]
        sampler = profiler(pid, profile)
        sent = await post_spaced(server_at, cid, headers, messages)
        if sampler is not None:
            sampler.send_signal(signal.SIGINT)
            sampler.wait(30)
        await asyncio.sleep(1.0)
        server_cpu = cpu_seconds(pid) - started
        server_system = cpu_times(pid)[1] - started_system
        clients_after = workers.ask("cpu")
        clients_user = sum(a[0] - b[0] for a, b in zip(clients_after, clients_before, strict=True))
        clients_system = sum(a[1] - b[1] for a, b in zip(clients_after, clients_before, strict=True))
        arrivals = [a for batch in workers.ask("arrivals") for a in batch]

        latencies = [arrived - sent[seq] for seq, arrived in arrivals if seq in sent]
        frames = len(latencies)
        expected = connected * messages
        by_message: dict[int, list[float]] = {}
        for seq, arrived in arrivals:
            if seq in sent:
                by_message.setdefault(seq, []).append(arrived - sent[seq])
        ordered = sorted(latencies)
        first = statistics.median(min(v) for v in by_message.values()) * 1000
        last = statistics.median(max(v) for v in by_message.values()) * 1000
        p50 = statistics.median(ordered) * 1000
        p99 = ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1000
        gross = server_cpu / frames * 1e6
        net = (server_cpu - append_cpu * messages) / frames * 1e6
        rows += [
            (
                f"delivery of a message to {connected:,} sockets on one instance",
                f"p50 {p50:.1f} ms, p99 {p99:.1f} ms; first socket p50 {first:.1f} ms, "
                f"last socket p50 {last:.1f} ms; {frames:,} of {expected:,} frames arrived",
            ),
            (
                "server CPU per delivered frame",
                f"{gross:.1f} µs with the append "
                f"({server_system / frames * 1e6:.1f} µs of it in the kernel), "
                f"{net:.1f} µs fan-out only (an append alone: {append_cpu * 1000:.2f} ms)",
            ),
            (
                "client processes' CPU per received frame",
                f"{(clients_user + clients_system) / max(frames, 1) * 1e6:.1f} µs over {WORKERS} processes "
                f"({clients_system / max(frames, 1) * 1e6:.1f} µs of it in the kernel; {kind} followers)",
            ),
            (
                f"server memory per idle connection, {connected:,} connected",
                f"{(at_sockets - before) / (connected - WORKERS):.1f} KiB",
            ),
        ]
        if idle > connected:
            workers.connect(idle - connected)
            await asyncio.sleep(2.0)
            at_idle = resident_kib(pid)
            rows.append(
                (
                    f"server memory per idle connection, {idle:,} connected",
                    f"{(at_idle - before) / (idle - WORKERS):.1f} KiB "
                    f"(+{(at_idle - before) / 1024:.0f} MiB in all)",
                )
            )
    finally:
        if workers is not None:
            workers.close()
        server.stop()
    bare = floor(tmp, sockets, messages) if native else None
    if bare is not None:
        rows.append(
            (
                "the floor: a bare os.write of the frame to each socket (bench/floor.py)",
                f"{bare[0]:.1f} µs a write ({bare[1]:.1f} µs of it in the kernel)",
            )
        )
    return rows


def floor(tmp: Path, sockets: int, messages: int) -> tuple[float, float] | None:
    """CPU time per write of bench/floor.py (a bare os.write of the frame to each socket), with the
    same C followers; None without a C compiler."""
    binary = native_followers(tmp)
    if binary is None:
        return None
    from tests.services import free_port

    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "bench" / "floor.py"),
            str(port),
            str(sockets),
            str(messages),
            str(SPACING),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    try:
        assert server.stdout.readline().strip() == "listening"
        workers = NativeWorkers(binary, WORKERS, "127.0.0.1", port, "token", "c")
        workers.connect(sockets)
        total, system = (float(x) for x in server.stdout.readline().split())
        workers.close()
        return total, system
    finally:
        server.kill()
        server.wait()


def table(rows: list[tuple[str, str]]) -> str:
    lines = ["**Real-time (WebSocket)**", "", "| measurement | result |", "|---|---|"]
    return "\n".join(lines + [f"| {name} | {value} |" for name, value in rows])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=40)
    parser.add_argument("--idle", type=int, default=10_000, help="idle connections to reach (0: skip)")
    parser.add_argument("--profile", help="record the server's stacks during the delivery run (py-spy)")
    parser.add_argument(
        "--ws", default="chatkeep", help="the server's WebSocket implementation (see bench/serve.py)"
    )
    parser.add_argument("--python-followers", action="store_true", help="followers in Python, not C")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="chatkeep-rt-") as tmp:
        rows = asyncio.run(
            run(
                Path(tmp),
                args.sockets,
                args.messages,
                args.idle,
                args.profile,
                args.ws,
                not args.python_followers,
            )
        )
    print(table(rows))


if __name__ == "__main__":
    main()
