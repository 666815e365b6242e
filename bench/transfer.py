"""Export and import throughput: `chatkeep import` of a chatkeep JSON Lines file into an empty
store, then `chatkeep export` of it, as the command line runs them (process start included).

    python bench/transfer.py                          # SQLite and PostgreSQL
    python bench/transfer.py --backends sqlite --conversations 500 --messages 10

Reports conversations/s and messages/s of each step, and checks that the export equals the file.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import backend_url  # noqa: E402

EPOCH = "2026-01-01T00:00:00.000Z"


def jsonl(conversations: int, messages: int, size: int) -> bytes:
    """An export of `conversations` conversations of `messages` messages of `size` characters, in the
    list order, as chatkeep writes it."""
    usage = {"input_tokens": 1, "output_tokens": 2}
    out = bytearray()
    for n in reversed(range(conversations)):
        cid = f"bench-{n:06d}"
        out += orjson.dumps(
            {"type": "conversation", "id": cid, "workspace": f"w{n % 3}", "user": f"u{n % 50}",
             "title": f"Conversation {n}", "mode": "durable", "created_at": EPOCH,
             "last_activity_at": f"2026-01-{1 + n // 86400:02d}T{n // 3600 % 24:02d}:{n // 60 % 60:02d}:"
                                 f"{n % 60:02d}.000Z",
             "expires_at": None, "starred": n % 5 == 0, "pinned": False, "archived": False, "tags": ["bench"],
             "message_count": messages, "last_seq": messages, "last_message_preview": "",
             "usage": {"input_tokens": messages, "output_tokens": 2 * messages}, "version": 1, "ttl_ms": None}
        ) + b"\n"  # fmt: skip
        for seq in range(1, messages + 1):
            out += orjson.dumps(
                {"type": "message", "id": f"m{seq}", "conversation_id": cid, "seq": seq,
                 "role": "user" if seq % 2 else "assistant", "content": "x" * size, "parts": None,
                 "metadata": None, "usage": usage, "status": "complete", "created_at": EPOCH}
            ) + b"\n"  # fmt: skip
    return bytes(out)


def cli(env: dict[str, str], *args: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "chatkeep", *args],
        env={**os.environ, **env},
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}/s"


async def bench(backend: str, conversations: int, messages: int, size: int, tmp: Path) -> str:
    url, cleanup = backend_url(backend, tmp)
    env = {
        "CHATKEEP_DURABLE_URL": url,
        "CHATKEEP_MAX_CONVERSATIONS_PER_USER": str(conversations),
        "CHATKEEP_LOG_LEVEL": "warning",
    }
    try:
        source = tmp / f"{backend}-in.jsonl"
        source.write_bytes(jsonl(conversations, messages, size))
        cli(env, "tenants", "create", "Bench")
        imported = cli(env, "import", str(source))
        again = cli(env, "import", str(source))
        output = tmp / f"{backend}-out.jsonl"
        exported = cli(env, "export", "--format", "jsonl", "--output", str(output))
        if output.read_bytes() != source.read_bytes():
            raise SystemExit(f"{backend}: the export differs from the imported file")
    finally:
        if cleanup is not None:
            await cleanup()
    total = conversations * messages
    mib = source.stat().st_size / 2**20
    return "\n".join(
        [
            f"**{backend}**: {conversations:,} conversations x {messages} messages of {size} characters "
            f"({mib:.1f} MiB of JSON Lines)",
            "",
            "| step | time | conversations | messages |",
            "|---|---|---|---|",
            f"| import into an empty store | {imported:.1f} s | {rate(conversations, imported)} | "
            f"{rate(total, imported)} |",
            f"| import again (all skipped) | {again:.1f} s | {rate(conversations, again)} | - |",
            f"| export (JSON Lines) | {exported:.1f} s | {rate(conversations, exported)} | "
            f"{rate(total, exported)} |",
        ]
    )


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--conversations", type=int, default=2_000)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--size", type=int, default=500, help="characters a message")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="chatkeep-bench-transfer-") as tmp:
        for backend in args.backends.split(","):
            print(f"benchmarking {backend} ...", file=sys.stderr)
            print(
                await bench(backend, args.conversations, args.messages, args.size, Path(tmp)) + "\n",
                flush=True,
            )


if __name__ == "__main__":
    asyncio.run(main())
