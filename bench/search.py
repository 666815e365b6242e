"""Search latency at 100,000 messages, on SQLite and PostgreSQL, through the store (no HTTP).

    python bench/search.py                        # both, 100,000 messages
    python bench/search.py --backends sqlite --messages 20000

One tenant, 10 users with 100 conversations of 100 messages each (at 100,000 messages), texts drawn
from a fixed vocabulary with Zipf-like frequencies, so a query's hit count ranges from a handful to
tens of thousands. Reports the median (and p90) of repeated searches of a user's conversations and of
the whole tenant's, with each query's hit count, and how long filling the store took (the indexes
are kept by triggers or by PostgreSQL on every write). PostgreSQL is analyzed after the load.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from tests import services  # noqa: E402
from tests.conftest import drop_schema  # noqa: E402

from chatkeep.domain.search import search_terms  # noqa: E402
from chatkeep.models import Conversation, Mode, NewMessage, Role, SearchQuery  # noqa: E402
from chatkeep.stores import Store, open_store  # noqa: E402
from chatkeep.stores.sql import SqlStore  # noqa: E402

USERS = 10
MESSAGES_PER_CONVERSATION = 100
VOCABULARY = [f"w{i}" for i in range(5_000)]
WEIGHTS = [1 / (rank + 1) for rank in range(len(VOCABULARY))]
QUERIES = {
    "frequent word": "w0",
    "mid word": "w50",
    "rare word": "w4000",
    "two words": "w1 w2",
    "rare marker": "zanzibar",
    "absent word": "nowhere",
    "hostile text": '"w3" AND (w4 OR NEAR(w5)) -x*',
}
ROUNDS = 21


async def fill(store: Store, tenant: str, messages: int) -> float:
    rng = random.Random(7)
    conversations = messages // MESSAGES_PER_CONVERSATION
    started = time.perf_counter()
    for n in range(conversations):
        c = Conversation(
            tenant=tenant,
            id=f"c{n}",
            workspace="bench",
            user=f"u{n % USERS}",
            mode=Mode.DURABLE,
            title=" ".join(rng.choices(VOCABULARY, WEIGHTS, k=4)),
        )
        await store.create_conversation(c)
        batch = []
        for i in range(MESSAGES_PER_CONVERSATION):
            words = rng.choices(VOCABULARY, WEIGHTS, k=rng.randint(5, 60))
            if rng.random() < 0.0005:
                words.append("zanzibar")
            batch.append(NewMessage(id=f"m{i}", role=Role.USER, content=" ".join(words)))
        await store.append_messages(tenant, c.id, batch)
    return time.perf_counter() - started


async def measure(store: Store, tenant: str, user: str | None) -> list[str]:
    lines = []
    for name, text in QUERIES.items():
        query = SearchQuery(tenant=tenant, terms=search_terms(text), user=user, limit=20)
        timings = []
        page = await store.search(query)
        for _ in range(ROUNDS):
            started = time.perf_counter()
            page = await store.search(query)
            timings.append(time.perf_counter() - started)
        timings.sort()
        shown = f"{len(page.hits)}{'+' if page.next_cursor else ''}{' partial' if page.partial else ''}"
        lines.append(
            f"  {name:<14} {text[:32]!r:<36} median {statistics.median(timings) * 1000:8.2f} ms"
            f"  p90 {timings[int(0.9 * (len(timings) - 1))] * 1000:8.2f} ms  hits {shown}"
        )
    return lines


async def run(backend: str, messages: int) -> None:
    schema = None
    with tempfile.TemporaryDirectory() as tmp:
        if backend == "sqlite":
            store = open_store(f"sqlite:///{tmp}/bench.db")
        else:
            schema = f"ck_bench_{uuid.uuid4().hex[:8]}"
            store = open_store(f"{services.require_postgres()}?schema={schema}")
        await store.connect()
        await store.migrate()
        try:
            tenant = "bench"
            filled = await fill(store, tenant, messages)
            if isinstance(store, SqlStore) and store.dialect == "postgresql":
                # What autovacuum does soon after a load this size: without statistics the planner
                # may not choose the GIN index.
                await store._run(lambda conn: conn.exec_driver_sql("ANALYZE"), write=True)
            print(f"{backend}: {messages:,} messages stored in {filled:.1f} s (indexes kept on every write)")
            for label, user in (("one user's conversations (1/10)", "u3"), ("the whole tenant", None)):
                print(f" search of {label}:")
                for line in await measure(store, tenant, user):
                    print(line)
        finally:
            await store.close()
            if schema is not None:
                await drop_schema(schema)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--messages", type=int, default=100_000)
    args = parser.parse_args()
    for backend in args.backends.split(","):
        asyncio.run(run(backend, args.messages))


if __name__ == "__main__":
    main()
