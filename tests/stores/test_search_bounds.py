"""The bounds of one search, which each backend sets for itself (see `Store.search`): the SQL
candidate cap and the Redis scan's limits. Past a bound the page says `partial` and ranks what
was read: the most recent messages, the most recently active conversations."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from chatkeep.domain.search import search_terms
from chatkeep.models import Conversation, Mode, NewMessage, Role, SearchQuery
from chatkeep.stores import Store
from chatkeep.stores.redis import store as redis_store
from chatkeep.stores.sql import search as sql_search
from tests.conftest import open_backend, unique


async def fill(store: Store, tenant: str, mode: Mode) -> None:
    """Three conversations, written in order c0, c1, c2, of three messages each, each write in its
    own millisecond."""
    for n in range(3):
        c = Conversation(tenant=tenant, id=f"c{n}", workspace="w", user="u", mode=mode, title=f"bound {n}")
        await store.create_conversation(c)
        for i in range(3):
            await asyncio.sleep(0.003)
            await store.append_messages(
                tenant, c.id, [NewMessage(id=f"m{i}", role=Role.USER, content="bound")]
            )


def where(hits: list[object]) -> set[tuple[str, str | None]]:
    return {(h.conversation_id, h.message_id) for h in hits}  # type: ignore[attr-defined]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_sql_reads_at_most_the_candidate_cap_of_the_newest_matches(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async for store in open_backend(backend, str(tmp_path)):
        tenant = unique("t")
        await fill(store, tenant, Mode.DURABLE)
        query = SearchQuery(tenant=tenant, terms=search_terms("bound"), limit=50)
        whole = await store.search(query)
        assert (len(whole.hits), whole.partial) == (12, False)
        monkeypatch.setattr(sql_search, "MAX_CANDIDATES", 4)
        capped = await store.search(query)
        assert capped.partial is True
        # the 4 newest messages, and the 3 titles (under the cap)
        assert where(capped.hits) == {
            ("c2", "m2"),
            ("c2", "m1"),
            ("c2", "m0"),
            ("c1", "m2"),
            ("c2", None),
            ("c1", None),
            ("c0", None),
        }


@pytest.mark.parametrize("backend", ["redis", "redis_fallback"])
async def test_the_redis_scan_stops_at_its_bounds(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async for store in open_backend(backend, str(tmp_path)):
        tenant = unique("t")
        await fill(store, tenant, Mode.EPHEMERAL)
        query = SearchQuery(tenant=tenant, terms=search_terms("bound"), limit=50)
        whole = await store.search(query)
        assert (len(whole.hits), whole.partial) == (12, False)
        monkeypatch.setattr(redis_store, "SEARCH_MAX_CONVERSATIONS", 2)
        two = await store.search(query)
        assert two.partial is True
        assert where(two.hits) == {(c, m) for c in ("c2", "c1") for m in (None, "m0", "m1", "m2")}
        monkeypatch.setattr(redis_store, "SEARCH_MAX_MESSAGES", 4)
        four = await store.search(query)
        assert four.partial is True
        assert where(four.hits) == {
            ("c2", None),
            ("c2", "m0"),
            ("c2", "m1"),
            ("c2", "m2"),
            ("c1", None),
            ("c1", "m2"),
        }
