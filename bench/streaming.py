"""What a streaming delta costs as its reply grows: the store alone, in this process, no HTTP.

    python bench/streaming.py                      # SQLite and PostgreSQL
    python bench/streaming.py --backends sqlite --deltas 2000

One reply is opened and grown by `--deltas` deltas of 57 characters; the CPU time of this process
(the SQLite writer thread included; PostgreSQL's own work is not) is reported per delta for each
quarter of them. A delta whose cost grows with the reply's length shows as rising rows.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import backend_url  # noqa: E402
from chatkeep.models import Conversation, MessageStatus, Mode, NewMessage, Role  # noqa: E402
from chatkeep.stores import open_store  # noqa: E402

PIECE = "lorem ipsum dolor sit amet, consectetur adipiscing elit "


async def bench(name: str, deltas: int, tmp: Path) -> list[str]:
    url, cleanup = backend_url(name, tmp)
    store = open_store(url)
    await store.connect()
    await store.migrate()
    rows = []
    try:
        await store.create_conversation(
            Conversation(tenant="t", id="c", workspace="w", user="u", mode=Mode.DURABLE)
        )
        opening = NewMessage(id="r", role=Role.ASSISTANT, content="", status=MessageStatus.STREAMING)
        await store.append_messages("t", "c", [opening])
        quarter = max(1, deltas // 4)
        started = time.process_time()
        for i in range(1, deltas + 1):
            await store.extend_message("t", "c", "r", PIECE)
            if i % quarter == 0:
                now = time.process_time()
                size = i * len(PIECE) / 1024
                rows.append(
                    f"| {name} | deltas {i - quarter + 1:,}-{i:,} (reply {size:,.0f} KiB at the end) "
                    f"| {(now - started) / quarter * 1e6:,.0f} µs |"
                )
                started = now
        await store.finish_message("t", "c", "r", MessageStatus.COMPLETE)
    finally:
        await store.close()
        if cleanup is not None:
            await cleanup()
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--deltas", type=int, default=1000)
    args = parser.parse_args()
    print("| store | deltas | CPU a delta |\n|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.backends.split(","):
            for row in await bench(name.strip(), args.deltas, Path(tmp)):
                print(row, flush=True)


if __name__ == "__main__":
    asyncio.run(main())
