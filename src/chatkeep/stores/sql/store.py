"""SqlStore: SQLite and PostgreSQL through one code path (SQLAlchemy 2 Core).

Every operation is one function in `ops` over a SQLAlchemy Connection. This module only decides how
such a function runs:

- SQLite: on a worker thread with the standard sqlite3 driver, so one operation costs one thread hop
  however many statements it runs. Writes go through one connection and one thread
  (`GroupCommitWriter`: SQLite allows one writer, and writes queued together share one commit);
  reads go through a small pool of WAL readers in autocommit. Appends, deltas and finishes run as
  `sqlite.py` runs them: the same statements, on the driver connection itself.
- PostgreSQL: on the event loop through asyncpg, via `AsyncConnection.run_sync`. Writes run in READ
  COMMITTED transactions (appends lock their conversation row); reads run in autocommit, so a read
  is one round trip. Appends, deltas and finishes first try `PostgresWrites` (`postgres.py`): two
  round trips on asyncpg and no lock held between them; what it leaves runs as above.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from chatkeep import models
from chatkeep.errors import ChatkeepError, ConfigError, StoreUnavailable
from chatkeep.stores.base import Extension, Store, TenantStore
from chatkeep.stores.requests import Append, Create, Extend, Finish, Read, Ref, Update
from chatkeep.stores.sql import engine, message_ops, ops, sqlite, transfer
from chatkeep.stores.sql.search import full_text_search
from chatkeep.stores.sql.writer import GroupCommitWriter
from chatkeep.stores.url import StoreURL

if TYPE_CHECKING:
    from chatkeep.stores.sql.postgres import PostgresWrites

T = TypeVar("T")
R = TypeVar("R")
Operation = Callable[[sa.Connection], T]

SQLITE_SCHEMES = {"sqlite", "sqlite+aiosqlite"}
POSTGRES_SCHEMES = {"postgresql", "postgres", "postgresql+asyncpg"}
# SQLite's hot writes (`sqlite.py`) raise the sqlite3 driver's own errors.
DRIVER_ERRORS = (
    sa.exc.OperationalError,
    sa.exc.InterfaceError,
    sa.exc.TimeoutError,
    sqlite3.OperationalError,
    sqlite3.InterfaceError,
    OSError,
)


class SqlStore(Store, TenantStore):
    """The durable store, of conversations and of tenants.

    URLs: `sqlite:///relative/path.db`, `sqlite:////absolute/path.db`,
    `postgresql://user:pass@host:5432/db`. Options as query parameters: `pool_size` (both),
    `synchronous` (SQLite: FULL by default, so an acknowledged write is on disk), `schema`
    (PostgreSQL: tables live in this schema, created by `migrate`), `max_overflow` (PostgreSQL;
    appends, deltas and finishes have a pool of their own of up to `pool_size + max_overflow`).
    """

    def __init__(self, url: StoreURL | str, *, clock: Callable[[], int] = models.now_ms) -> None:
        self.url = url if isinstance(url, StoreURL) else StoreURL.parse(url)
        if self.url.scheme in SQLITE_SCHEMES:
            self.dialect = "sqlite"
        elif self.url.scheme in POSTGRES_SCHEMES:
            self.dialect = "postgresql"
        else:
            raise ConfigError(f"SqlStore cannot open {self.url.redacted!r}")
        self.schema = self.url.options.get("schema")
        if self.schema is not None and not models.is_id(self.schema):
            raise ConfigError(f"schema name {self.schema!r} is not a plain identifier")
        self._clock = clock
        # SQLite
        self._readers: sa.Engine | None = None
        self._writer: sa.Engine | None = None
        self._read_threads: ThreadPoolExecutor | None = None
        self._write_queue: GroupCommitWriter | None = None
        # PostgreSQL
        self._engine: AsyncEngine | None = None
        self._read_engine: AsyncEngine | None = None
        self._writes: PostgresWrites | None = None  # appends, deltas and finishes

    def __repr__(self) -> str:
        return f"SqlStore({self.url.redacted!r})"

    # -- lifecycle --------------------------------------------------------------------------------

    async def connect(self) -> None:
        if self.dialect == "sqlite" and self._readers is None:
            self._open_sqlite()
        elif self.dialect == "postgresql" and self._engine is None:
            self._open_postgres()
            from chatkeep.stores.sql.postgres import PostgresWrites  # needs asyncpg

            self._writes = PostgresWrites(self.url, self.schema)
            await self._writes.open()
        await self.ping()

    def _open_sqlite(self) -> None:
        self._readers, self._writer, readers = engine.sqlite_engines(self.url)
        self._read_threads = ThreadPoolExecutor(readers, thread_name_prefix="chatkeep-sqlite-read")
        self._write_queue = GroupCommitWriter(self._writer)

    def _open_postgres(self) -> None:
        self._engine = engine.postgres_engine(self.url, self.schema)
        self._read_engine = self._engine.execution_options(isolation_level="AUTOCOMMIT")

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        if self._write_queue is not None:
            await loop.run_in_executor(None, self._write_queue.stop)
        if self._read_threads is not None:
            await loop.run_in_executor(None, self._read_threads.shutdown)
        for sync_engine in (self._readers, self._writer):
            if sync_engine is not None:
                sync_engine.dispose()
        if self._writes is not None:
            await self._writes.close()
        if self._engine is not None:
            await self._engine.dispose()
        self._readers = self._writer = self._engine = self._read_engine = None
        self._read_threads = None
        self._write_queue = None
        self._writes = None

    async def ping(self) -> None:
        await self._run(lambda conn: conn.execute(sa.text("SELECT 1")).scalar_one())

    async def migrate(self) -> None:
        await self._run(functools.partial(engine.upgrade, schema=self.schema), write=True)

    # -- running operations -----------------------------------------------------------------------

    async def _run(self, operation: Operation[T], *, write: bool = False) -> T:
        """Run one operation (a transaction when writing), mapping driver failures to
        StoreUnavailable. Reads are retried once on a connection that turned out to be dead."""
        for attempt in (1, 2):
            try:
                if self.dialect == "sqlite":
                    return await self._run_sqlite(operation, write)
                return await self._run_postgres(operation, write)
            except ChatkeepError:
                raise
            except sa.exc.DBAPIError as exc:
                if exc.connection_invalidated and not write and attempt == 1:
                    continue
                if exc.connection_invalidated or isinstance(exc, DRIVER_ERRORS):
                    raise StoreUnavailable(
                        f"{self.url.redacted} is unavailable ({type(exc).__name__})"
                    ) from exc
                raise
            except DRIVER_ERRORS as exc:
                raise StoreUnavailable(f"{self.url.redacted} is unavailable ({type(exc).__name__})") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def _run_sqlite(self, operation: Operation[T], write: bool) -> T:
        if write:
            if self._write_queue is None:
                raise StoreUnavailable(f"{self.url.redacted} is not connected")
            return await self._write_queue.submit(operation)
        engine, threads = self._readers, self._read_threads
        if engine is None or threads is None:
            raise StoreUnavailable(f"{self.url.redacted} is not connected")

        def call() -> T:
            with engine.connect() as conn:
                return operation(conn)

        return await asyncio.get_running_loop().run_in_executor(threads, call)

    async def _run_postgres(self, operation: Operation[T], write: bool) -> T:
        engine = self._engine if write else self._read_engine
        if engine is None:
            raise StoreUnavailable(f"{self.url.redacted} is not connected")
        async with engine.begin() if write else engine.connect() as conn:
            return await conn.run_sync(operation)

    # -- tenants ----------------------------------------------------------------------------------

    async def create_tenant(self, tenant: models.Tenant) -> None:
        await self._run(lambda conn: ops.create_tenant(conn, tenant), write=True)

    async def get_tenant(self, tenant_id: str) -> models.Tenant | None:
        return await self._run(lambda conn: ops.find_tenant(conn, "id", tenant_id))

    async def get_tenant_by_key_hash(self, key_hash: str) -> models.Tenant | None:
        return await self._run(lambda conn: ops.find_tenant(conn, "api_key_hash", key_hash))

    async def list_tenants(self) -> list[models.Tenant]:
        return await self._run(ops.list_tenants)

    async def update_tenant(self, tenant: models.Tenant) -> None:
        await self._run(lambda conn: ops.update_tenant(conn, tenant), write=True)

    # -- conversations ----------------------------------------------------------------------------

    async def create(self, request: Create) -> models.Conversation:
        c, now = request.conversation, self._clock()
        return await self._run(
            lambda conn: ops.create_conversation(conn, c, now, request.max_per_tenant, request.max_per_user),
            write=True,
        )

    async def get(self, ref: Ref) -> models.Conversation:
        return await self._run(lambda conn: ops.load(conn, *ref.key, self._clock(), scope=ref.scope))

    async def list_conversations(self, query: models.ConversationQuery) -> models.ConversationPage:
        return await self._run(lambda conn: ops.list_conversations(conn, query, self._clock()))

    async def count_conversations(self, tenant: str, user: str | None = None) -> int:
        return await self._run(lambda conn: ops.count(conn, tenant, user, self._clock()))

    async def update(self, request: Update) -> models.Conversation:
        ref, patch, expected = request.ref, request.patch, request.expected_version
        return await self._run(
            lambda conn: ops.update_conversation(conn, *ref.key, patch, expected, self._clock(), ref.scope),
            write=True,
        )

    async def touch(self, ref: Ref) -> models.Conversation:
        return await self._run(
            lambda conn: ops.touch_conversation(conn, *ref.key, self._clock(), ref.scope), write=True
        )

    async def sweep_expired(self, *, limit: int = 500, keep_ms: int = 0) -> list[models.ExpiredConversation]:
        return await self._run(
            lambda conn: ops.sweep_expired(conn, self._clock(), limit, keep_ms), write=True
        )

    async def delete(self, ref: Ref) -> models.Conversation:
        return await self._run(
            lambda conn: ops.delete_conversation(conn, *ref.key, self._clock(), ref.scope), write=True
        )

    # -- messages ---------------------------------------------------------------------------------

    async def append(self, request: Append) -> models.AppendOutcome:
        quick = self._writes.append if self._writes is not None else None
        return await self._write_message(request, quick, message_ops.append)

    async def extend(self, request: Extend) -> Extension:
        quick = self._writes.extend if self._writes is not None else None
        return await self._write_message(request, quick, message_ops.extend)

    async def finish(self, request: Finish) -> models.Message:
        quick = self._writes.finish if self._writes is not None else None
        return await self._write_message(request, quick, message_ops.finish)

    async def _write_message(
        self,
        request: R,
        quick: Callable[[R, int], Awaitable[T | None]] | None,
        operation: Callable[[message_ops.Run, R, int], T],
    ) -> T:
        """An append, a delta or a finish: on PostgreSQL the quick way first (`postgres.py`), which
        returns None where it does not apply; then the operation in a transaction, on SQLite on the
        writer's driver connection (`sqlite.py`)."""
        if quick is not None:
            done = await quick(request, self._clock())
            if done is not None:
                return done
        run = sqlite.Driver if self.dialect == "sqlite" else message_ops.Statements
        return await self._run(lambda conn: operation(run(conn), request, self._clock()), write=True)

    async def interrupt_stale_streams(
        self, *, idle_ms: int, limit: int = 500
    ) -> list[tuple[models.Conversation, models.Message]]:
        return await self._run(
            lambda conn: message_ops.interrupt_stale_streams(conn, self._clock(), idle_ms, limit), write=True
        )

    async def read(self, request: Read) -> models.MessagePage:
        now = self._clock()
        return await self._run(lambda conn: message_ops.read(conn, request, now))

    async def search(self, query: models.SearchQuery) -> models.SearchPage:
        return await self._run(lambda conn: full_text_search(conn, query, self._clock()))

    async def import_conversation(
        self, conversation: models.Conversation, messages: Sequence[models.Message]
    ) -> bool:
        return await self._run(transfer.importer(conversation, messages, self._clock()), write=True)
