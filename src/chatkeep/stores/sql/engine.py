"""The SQL store's engines: SQLite (a writer and a pool of readers on the standard driver, WAL, and
the durability asked for) and PostgreSQL (asyncpg), and bringing a schema up to date with Alembic."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from chatkeep.errors import ConfigError
from chatkeep.stores.sql import statements
from chatkeep.stores.url import StoreURL

MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 10_000
SQLITE_SYNCHRONOUS = {"OFF", "NORMAL", "FULL", "EXTRA"}
POSTGRES_POOL_SIZE = 10
POSTGRES_MAX_OVERFLOW = 10


def sqlite_engines(store_url: StoreURL) -> tuple[sa.Engine, sa.Engine, int]:
    """The readers' engine, the one writer's engine, and how many readers."""
    url = sa.make_url(store_url.without_options()).set(drivername="sqlite")
    if not url.database or url.database == ":memory:":
        raise ConfigError("SQLite needs a file path (sqlite:///./chatkeep.db); use memory:// for RAM only")
    Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    synchronous = store_url.options.get("synchronous", "FULL").upper()
    if synchronous not in SQLITE_SYNCHRONOUS:
        raise ConfigError(f"synchronous={synchronous!r}: use one of {sorted(SQLITE_SYNCHRONOUS)}")
    readers = store_url.int_option("pool_size", 4)
    return (
        _sqlite_engine(url, synchronous, pool_size=readers, begin=None),
        _sqlite_engine(url, synchronous, pool_size=1, begin="BEGIN IMMEDIATE"),
        readers,
    )


def postgres_engine(store_url: StoreURL, schema: str | None) -> AsyncEngine:
    url = sa.make_url(store_url.without_options()).set(drivername="postgresql+asyncpg")
    connect_args: dict[str, Any] = {"timeout": 10}
    if schema:
        connect_args["server_settings"] = {"search_path": schema}
    # No pre-ping (a round trip per checkout): a dropped connection fails its call with
    # StoreUnavailable, SQLAlchemy discards the pool's stale connections, and reads retry once.
    return create_async_engine(
        url,
        pool_size=store_url.int_option("pool_size", POSTGRES_POOL_SIZE),
        max_overflow=store_url.int_option("max_overflow", POSTGRES_MAX_OVERFLOW),
        pool_recycle=1800,
        connect_args=connect_args,
    )


def postgres_connections(store_url: StoreURL) -> int:
    """The most connections the PostgreSQL engine holds at once."""
    return store_url.int_option("pool_size", POSTGRES_POOL_SIZE) + store_url.int_option(
        "max_overflow", POSTGRES_MAX_OVERFLOW
    )


def _sqlite_engine(url: sa.URL, synchronous: str, *, pool_size: int, begin: str | None) -> sa.Engine:
    engine = sa.create_engine(
        url, pool_size=pool_size, max_overflow=0, connect_args={"check_same_thread": False}
    )

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # chatkeep emits BEGIN itself (below); the driver must not start or end transactions.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute(f"PRAGMA synchronous = {synchronous}")
        # Temporary files in memory: the writer's savepoints (one a write in a group) keep the pages
        # they change in a sub-journal that otherwise spills to a file, and writing it cost as much
        # system time as the rest of the writer's work. Durability is the WAL's, not the sub-journal's.
        cursor.execute("PRAGMA temp_store = MEMORY")
        cursor.close()

    if begin is not None:

        @event.listens_for(engine, "begin")
        def on_begin(conn: sa.Connection) -> None:
            # On the driver connection: SQLAlchemy's execution costs more than the statement.
            driver: Any = conn.connection.driver_connection
            driver.execute(begin)

    return engine


def upgrade(connection: sa.Connection, *, schema: str | None) -> None:
    from alembic import command
    from alembic.config import Config

    if connection.dialect.name == "postgresql":
        # One migrator at a time, however many instances start together.
        connection.execute(
            sa.text("SELECT pg_advisory_xact_lock(:ns, 0)"), {"ns": statements.ADVISORY_NAMESPACE}
        )
        if schema:
            connection.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
