"""Where the server's time goes under the append benchmark: py-spy samples the server process while
`Bench.appends` runs, and the top of the profile is printed by own time and by total time.

    python bench/profile.py                        # SQLite, 50 clients x 120 appends
    python bench/profile.py --backends postgres --clients 1 --per-client 2000

Needs py-spy (`pip install py-spy`); sampling another process may need ptrace permission.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.server import ServerProcess  # noqa: E402

from bench.run import Bench, backend_env, server_env  # noqa: E402

INSIDE = ("chatkeep/", "fastapi/", "starlette/", "pydantic", "jwt/", "prometheus_client/", "json/")


def summarise(folded: str, top: int) -> str:
    """The frames with the most samples, by own time (the frame on top) and by total time."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in folded.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        if frames and frames[0].startswith("process") or frames and frames[0].startswith("thread"):
            frames = frames[1:]
        samples += n
        if frames:
            own[_short(frames[-1])] += n
        for frame in {_short(f) for f in frames}:
            total[frame] += n
    lines = [f"{samples} samples", "", "own time:"]
    lines += [f"  {n / samples:6.1%}  {frame}" for frame, n in own.most_common(top)]
    # The chain every request passes through (server, middleware, router) is in nearly every
    # sample: total time is shown for what a request does inside it.
    inside = [
        (frame, n)
        for frame, n in total.most_common()
        if n < 0.3 * samples and frame.split(" (", 1)[1].startswith(INSIDE)
    ]
    lines += ["", "total time (chatkeep, framework, auth, metrics):"]
    lines += [f"  {n / samples:6.1%}  {frame}" for frame, n in inside[:top]]
    return "\n".join(lines)


def _short(frame: str) -> str:
    """`handle (chatkeep/api/app.py:40)` with the path cut to the package."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    for marker in ("site-packages/", "/src/", "lib/python3"):
        if marker in where:
            where = where.split(marker, 1)[1]
            break
    where = where.rsplit(":", 1)[0]  # by function, whatever its line
    return f"{name} ({where})"


async def profile(backend: str, clients: int, per_client: int, top: int, tmp: Path) -> str:
    stores, mode, cleanup = backend_env(backend, tmp)
    server = ServerProcess(server_env(stores), tmp / f"{backend}.log").start()
    assert server.process is not None
    out = tmp / f"{backend}.folded"
    try:
        bench = Bench(server.url, quick=True, mode=mode)
        await bench.start()
        await bench.appends(clients, 5)  # warm up
        spy = subprocess.Popen(
            [
                "py-spy",
                "record",
                "-r",
                "250",
                "--format",
                "raw",
                "-o",
                str(out),
                "-p",
                str(server.process.pid),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)
        result = await bench.appends(clients, per_client)
        spy.send_signal(2)
        spy.wait(30)
        await bench.client.aclose()
    finally:
        server.stop()
        if cleanup is not None:
            await cleanup()
    figures = ", ".join(f"{k} {v}" for k, v in result.values.items())
    return f"**{backend}**: {result.name}: {figures}\n" + summarise(out.read_text(), top)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backends", default="sqlite")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--per-client", type=int, default=120)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="chatkeep-profile-") as tmp:
        for backend in args.backends.split(","):
            print(
                await profile(backend, args.clients, args.per_client, args.top, Path(tmp)) + "\n", flush=True
            )


if __name__ == "__main__":
    asyncio.run(main())
