"""SQLite's full-text index holds exactly the messages that are not streaming, each with the words it
holds now (migration 0007): a streaming reply is indexed once it stops, never once a delta, and is
found meanwhile by reading it."""

from __future__ import annotations

import re
import sqlite3
from collections import defaultdict
from pathlib import Path

import sqlalchemy as sa

from chatkeep.domain.search import search_terms
from chatkeep.models import Conversation, LimitPolicy, MessageStatus, Mode, NewMessage, Role, SearchQuery
from chatkeep.stores import open_store
from chatkeep.stores.sql import SqlStore
from chatkeep.stores.sql.search import scope_of, sqlite_streaming


def indexed(path: Path) -> dict[str, set[str]]:
    """The words messages_fts holds, by message id, read from the index itself (fts5vocab)."""
    db = sqlite3.connect(path)
    try:
        db.execute("CREATE VIRTUAL TABLE temp.words USING fts5vocab(main, messages_fts, instance)")
        # 'integrity-check' with rank 0: the index is consistent in itself (external content not read).
        db.execute("INSERT INTO messages_fts(messages_fts, rank) VALUES ('integrity-check', 0)")
        rows = db.execute(
            "SELECT m.id, w.term FROM temp.words w JOIN messages m ON m.rowid = w.doc"
        ).fetchall()
    finally:
        db.close()
    found: dict[str, set[str]] = defaultdict(set)
    for message_id, term in rows:
        found[message_id].add(term)
    return dict(found)


def stored(path: Path) -> dict[str, set[str]]:
    """What the index should hold: the words of every message not streaming."""
    db = sqlite3.connect(path)
    try:
        rows = db.execute("SELECT id, content FROM messages WHERE status != 'streaming'").fetchall()
    finally:
        db.close()
    return {
        message_id: set(re.findall(r"[a-z0-9]+", content.lower())) for message_id, content in rows if content
    }


async def test_the_index_holds_the_messages_not_streaming_with_their_words_now(tmp_path: Path) -> None:
    path = tmp_path / "fts.db"
    store = open_store(f"sqlite:///{path}")
    assert isinstance(store, SqlStore)
    await store.connect()
    await store.migrate()

    async def found(words: str) -> list[str | None]:
        page = await store.search(SearchQuery(tenant="t", terms=search_terms(words)))
        return [hit.message_id for hit in page.hits]

    def check() -> None:
        assert indexed(path) == stored(path)

    try:
        for cid in ("a", "b"):
            c = Conversation(tenant="t", id=cid, workspace="w", user="u", mode=Mode.DURABLE)
            await store.create_conversation(c)
        await store.append_messages(
            "t", "a", [NewMessage(id="q", role=Role.USER, content="tell me of harbours")]
        )
        opened = [
            NewMessage(id=r, role=Role.ASSISTANT, content="Once ", status=MessageStatus.STREAMING)
            for r in "rs"
        ]
        await store.append_messages("t", "a", opened[:1])
        await store.append_messages("t", "b", opened[1:])
        check()
        assert set(indexed(path)) == {"q"}
        for i in range(5):
            await store.extend_message("t", "a", "r", f"lantern{i} ")
            await store.extend_message("t", "b", "s", f"anchor{i} ")
        check()
        # Streaming replies are found by the words they hold now, though not indexed yet.
        assert await found("lantern4") == ["r"]
        assert await found("once anchor2") == ["s"]
        await store.finish_message("t", "a", "r", MessageStatus.COMPLETE)
        check()
        assert set(indexed(path)) == {"q", "r"} and await found("lantern3") == ["r"]
        await store.finish_message("t", "b", "s", MessageStatus.INTERRUPTED)
        check()
        assert await found("anchor0") == ["s"]
        # A trimmed message leaves the index with the words it had; another streaming one is opened.
        await store.append_messages(
            "t",
            "b",
            [NewMessage(id="u", role=Role.ASSISTANT, content="rope ", status=MessageStatus.STREAMING)],
            max_messages=1,
            policy=LimitPolicy.TRIM,
        )
        await store.extend_message("t", "b", "u", "knot")
        check()
        assert await found("anchor0") == [] and await found("rope knot") == ["u"]
        # Deleting a conversation takes out its messages, streaming or not.
        await store.delete_conversation("t", "b")
        await store.delete_conversation("t", "a")
        check()
        assert indexed(path) == {}
    finally:
        await store.close()


async def test_streaming_replies_are_read_through_their_partial_index_not_the_tenants_messages(
    tmp_path: Path,
) -> None:
    store = open_store(f"sqlite:///{tmp_path}/plan.db")
    assert isinstance(store, SqlStore)
    await store.connect()
    await store.migrate()
    query = SearchQuery(tenant="t", terms=search_terms("word"), user="u", allowed_workspaces=frozenset({"w"}))
    statement = sqlite_streaming(scope_of(query, 0))

    def plan(conn: sa.Connection) -> list[str]:
        compiled = statement.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
        params = [compiled.params[name] for name in compiled.positiontup or ()]
        rows = conn.connection.driver_connection.execute(f"EXPLAIN QUERY PLAN {compiled}", params)
        return [row[3] for row in rows]

    try:
        steps = await store._run(plan)
    finally:
        await store.close()
    assert steps[0] == "SCAN messages USING INDEX ix_messages_streaming", steps
    assert not any("messages" in step and "tenant_id" in step for step in steps), steps
