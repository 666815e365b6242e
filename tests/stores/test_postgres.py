"""What only the PostgreSQL store does: schemas, concurrent migrations, and losing the server."""

from __future__ import annotations

import asyncio
import uuid

import sqlalchemy as sa

from chatkeep.errors import StoreUnavailable
from chatkeep.stores import open_store
from chatkeep.stores.sql import SqlStore
from tests import services
from tests.conftest import drop_schema


async def test_many_instances_migrating_at_once_create_the_schema_once() -> None:
    schema = f"ck_test_{uuid.uuid4().hex[:10]}"
    url = f"{services.require_postgres()}?schema={schema}"
    stores = [open_store(url) for _ in range(5)]
    try:
        await asyncio.gather(*(s.connect() for s in stores))
        await asyncio.gather(*(s.migrate() for s in stores))
        assert isinstance(stores[0], SqlStore)
        tables = await stores[0]._run(
            lambda conn: (
                conn.execute(
                    sa.text("SELECT table_name FROM information_schema.tables WHERE table_schema = :s"),
                    {"s": schema},
                )
                .scalars()
                .all()
            )
        )
        assert {
            "tenants",
            "conversations",
            "messages",
            "conversation_tags",
            "chatkeep_schema_version",
        } <= set(tables)
    finally:
        for store in stores:
            await store.close()
        await drop_schema(schema)


async def test_an_unreachable_server_is_store_unavailable_with_the_password_hidden() -> None:
    store = open_store("postgresql://chatkeep:s3cret@127.0.0.1:1/nothing")
    try:
        await store.connect()
        raise AssertionError("connect should have failed")
    except StoreUnavailable as exc:
        assert "s3cret" not in str(exc) and "***" in str(exc)
    finally:
        await store.close()
