"""Migration 0005 indexes what a database already holds: rows written before it are found after it,
on both SQL engines; 0007 takes SQLite's streaming replies out of the index, and its downgrade
puts them back."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from chatkeep.domain.search import search_terms
from chatkeep.models import MessageStatus, SearchQuery
from chatkeep.stores import open_store
from chatkeep.stores.sql import SqlStore
from chatkeep.stores.sql.engine import MIGRATIONS
from tests import services
from tests.conftest import drop_schema
from tests.stores.test_sqlite_search import indexed

ROW = {
    "tenant_id": "t1",
    "workspace": "w",
    "user_id": "u",
    "mode": "durable",
    "created_at": 1,
    "last_activity_at": 1,
    "starred": False,
    "pinned": False,
    "archived": False,
    "tags": "[]",
    "message_count": 1,
    "last_seq": 1,
    "preview": "",
    "input_tokens": 0,
    "output_tokens": 0,
    "version": 1,
}


def migrated(revision: str, *, down: bool = False) -> Callable[[sa.Connection], None]:
    """Alembic's upgrade (or downgrade) to `revision`, on the store's connection."""

    def run(conn: sa.Connection) -> None:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(config, revision)

    return run


def write_old_rows(conn: sa.Connection) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO conversations (id, title, title_folded, tenant_id, workspace, user_id, mode, "
            "created_at, last_activity_at, starred, pinned, archived, tags, message_count, last_seq, "
            "preview, input_tokens, output_tokens, version) VALUES ('c1', 'Older lighthouse', "
            "'older lighthouse', :tenant_id, :workspace, :user_id, :mode, :created_at, :last_activity_at, "
            ":starred, :pinned, :archived, :tags, :message_count, :last_seq, :preview, :input_tokens, "
            ":output_tokens, :version)"
        ),
        ROW,
    )
    conn.execute(
        sa.text(
            "INSERT INTO messages (tenant_id, conversation_id, seq, id, role, content, input_tokens, "
            "output_tokens, created_at, status) VALUES ('t1', 'c1', 1, 'm1', 'user', "
            "'the lighthouse keeper', 0, 0, 1, 'complete')"
        )
    )


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_rows_written_before_the_migration_are_found_after_it(backend: str, tmp_path: Path) -> None:
    schema = None
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path}/old.db"
    else:
        schema = f"ck_test_{uuid.uuid4().hex[:10]}"
        url = f"{services.require_postgres()}?schema={schema}"
    store = open_store(url)
    assert isinstance(store, SqlStore)
    await store.connect()
    try:
        if schema is not None:
            await store._run(lambda conn: conn.execute(sa.text(f'CREATE SCHEMA "{schema}"')), write=True)
        await store._run(migrated("0004"), write=True)
        await store._run(write_old_rows, write=True)
        await store.migrate()
        page = await store.search(SearchQuery(tenant="t1", terms=search_terms("lighthouse")))
        assert [(h.conversation_id, h.message_id) for h in page.hits] == [("c1", None), ("c1", "m1")]
    finally:
        await store.close()
        if schema is not None:
            await drop_schema(schema)


async def test_0007_takes_streaming_replies_out_of_the_sqlite_index_and_0006_puts_them_back(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    store = open_store(f"sqlite:///{path}")
    assert isinstance(store, SqlStore)
    await store.connect()
    try:
        await store._run(migrated("0006"), write=True)
        await store._run(write_old_rows, write=True)

        def streaming_reply(conn: sa.Connection) -> None:
            conn.exec_driver_sql(
                "INSERT INTO messages (tenant_id, conversation_id, seq, id, role, content, input_tokens, "
                "output_tokens, created_at, status) VALUES ('t1', 'c1', 2, 'm2', 'assistant', "
                "'the lighthouse beam', 0, 0, 2, 'streaming')"
            )

        await store._run(streaming_reply, write=True)
        assert sorted(indexed(path)) == ["m1", "m2"]
        await store.migrate()
        assert sorted(indexed(path)) == ["m1"]
        page = await store.search(SearchQuery(tenant="t1", terms=search_terms("lighthouse beam")))
        assert [h.message_id for h in page.hits] == ["m2"]
        await store.finish_message("t1", "c1", "m2", MessageStatus.COMPLETE)
        assert sorted(indexed(path)) == ["m1", "m2"]
        await store._run(
            lambda conn: conn.exec_driver_sql("UPDATE messages SET status = 'streaming' WHERE id = 'm2'"),
            write=True,
        )
        assert sorted(indexed(path)) == ["m1"]
        await store._run(migrated("0006", down=True), write=True)
        assert sorted(indexed(path)) == ["m1", "m2"]
    finally:
        await store.close()
