"""Migration 0005 indexes what a database already holds: rows written before it are found after it,
on both SQL engines."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from chatkeep.domain.search import search_terms
from chatkeep.models import SearchQuery
from chatkeep.stores import open_store
from chatkeep.stores.sql import SqlStore
from chatkeep.stores.sql.engine import MIGRATIONS
from tests import services
from tests.conftest import drop_schema

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


def upgrade_to(revision: str) -> Callable[[sa.Connection], None]:
    def run(conn: sa.Connection) -> None:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        command.upgrade(config, revision)

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
        await store._run(upgrade_to("0004"), write=True)
        await store._run(write_old_rows, write=True)
        await store.migrate()
        page = await store.search(SearchQuery(tenant="t1", terms=search_terms("lighthouse")))
        assert [(h.conversation_id, h.message_id) for h in page.hits] == [("c1", None), ("c1", "m1")]
    finally:
        await store.close()
        if schema is not None:
            await drop_schema(schema)
