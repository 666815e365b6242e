"""SqlStore: SQLite and PostgreSQL through one code path (SQLAlchemy 2 Core, async)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from chatkeep.errors import (
    ChatkeepError,
    ConfigError,
    Conflict,
    Expired,
    NotFound,
    StoreUnavailable,
    VersionMismatch,
)
from chatkeep.models import (
    ID_RE,
    AppendOutcome,
    Conversation,
    ConversationPage,
    ConversationPatch,
    ConversationQuery,
    LimitPolicy,
    Message,
    MessagePage,
    MessageStatus,
    Mode,
    NewMessage,
    Role,
    Tenant,
    TenantSettings,
    Usage,
    cursor_of,
    now_ms,
)
from chatkeep.stores.base import (
    Store,
    apply_patch,
    check_quota,
    fold,
    fresh_conversation,
    is_expired,
    plan_append,
)
from chatkeep.stores.sql.schema import conversation_tags, conversations, messages, tenants
from chatkeep.stores.url import StoreURL

MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_SCHEMES = {"sqlite", "sqlite+aiosqlite"}
POSTGRES_SCHEMES = {"postgresql", "postgres", "postgresql+asyncpg"}
# First key of the PostgreSQL advisory locks chatkeep takes ("ck").
ADVISORY_NAMESPACE = 0x636B
SQLITE_BUSY_TIMEOUT_MS = 10_000
SQLITE_SYNCHRONOUS = {"OFF", "NORMAL", "FULL", "EXTRA"}


class SqlStore(Store):
    """The durable store.

    URLs: `sqlite:///relative/path.db`, `sqlite:////absolute/path.db`,
    `postgresql://user:pass@host:5432/db`. Options as query parameters: `pool_size` (both),
    `synchronous` (SQLite: FULL by default, so a write acknowledged is on disk), `schema`
    (PostgreSQL: tables live in this schema, created by `migrate`).

    SQLite writes go through one connection in `BEGIN IMMEDIATE` transactions (serialised in-process
    by a lock, across processes by SQLite), reads through a pool of WAL readers. PostgreSQL appends
    lock the conversation row, which serialises appenders of one conversation and nothing else.
    """

    def __init__(
        self, url: StoreURL | str, *, engine: AsyncEngine | None = None, clock: Callable[[], int] = now_ms
    ) -> None:
        self.url = url if isinstance(url, StoreURL) else StoreURL.parse(url)
        if self.url.scheme in SQLITE_SCHEMES:
            self.dialect = "sqlite"
        elif self.url.scheme in POSTGRES_SCHEMES:
            self.dialect = "postgresql"
        else:
            raise ConfigError(f"SqlStore cannot open {self.url.redacted!r}")
        self.schema = self.url.options.get("schema")
        if self.schema is not None and not ID_RE.match(self.schema):
            raise ConfigError(f"schema name {self.schema!r} is not a plain identifier")
        self._clock = clock
        self._engine = engine
        self._write_engine = engine
        self._owns_engines = engine is None
        self._write_lock: asyncio.Lock | None = asyncio.Lock() if self.dialect == "sqlite" else None

    def __repr__(self) -> str:
        return f"SqlStore({self.url.redacted!r})"

    # -- lifecycle --------------------------------------------------------------------------------

    async def connect(self) -> None:
        if self._engine is None:
            if self.dialect == "sqlite":
                self._engine, self._write_engine = self._sqlite_engines()
            else:
                self._engine = self._write_engine = self._postgres_engine()
        await self.ping()

    async def close(self) -> None:
        if self._owns_engines:
            for engine in {self._engine, self._write_engine}:
                if engine is not None:
                    await engine.dispose()
            self._engine = self._write_engine = None

    async def ping(self) -> None:
        async with self._read() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def migrate(self) -> None:
        async with self._write() as conn:
            if self.dialect == "postgresql":
                await conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:ns, 0)"), {"ns": ADVISORY_NAMESPACE}
                )
                if self.schema:
                    await conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))
            await conn.run_sync(_upgrade)

    def _sqlite_engines(self) -> tuple[AsyncEngine, AsyncEngine]:
        url = sa.make_url(self.url.without_options()).set(drivername="sqlite+aiosqlite")
        if not url.database or url.database == ":memory:":
            raise ConfigError(
                "SQLite needs a file path (sqlite:///./chatkeep.db); use memory:// for RAM only"
            )
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        synchronous = self.url.options.get("synchronous", "FULL").upper()
        if synchronous not in SQLITE_SYNCHRONOUS:
            raise ConfigError(f"synchronous={synchronous!r}: use one of {sorted(SQLITE_SYNCHRONOUS)}")
        readers = _sqlite_engine(url, "BEGIN", synchronous, pool_size=self.url.int_option("pool_size", 4))
        writer = _sqlite_engine(url, "BEGIN IMMEDIATE", synchronous, pool_size=1)
        return readers, writer

    def _postgres_engine(self) -> AsyncEngine:
        url = sa.make_url(self.url.without_options()).set(drivername="postgresql+asyncpg")
        connect_args: dict[str, Any] = {"timeout": 10}
        if self.schema:
            connect_args["server_settings"] = {"search_path": self.schema}
        return create_async_engine(
            url,
            pool_size=self.url.int_option("pool_size", 10),
            max_overflow=self.url.int_option("max_overflow", 10),
            pool_pre_ping=True,
            connect_args=connect_args,
        )

    @contextlib.asynccontextmanager
    async def _guard(self) -> AsyncIterator[None]:
        try:
            yield
        except ChatkeepError:
            raise
        except (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError, OSError) as exc:
            raise StoreUnavailable(f"{self.url.redacted} is unavailable ({type(exc).__name__})") from exc
        except sa.exc.DBAPIError as exc:
            if exc.connection_invalidated:
                raise StoreUnavailable(f"{self.url.redacted} dropped the connection") from exc
            raise

    @contextlib.asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        if self._engine is None:
            raise StoreUnavailable(f"{self.url.redacted} is not connected")
        async with self._guard(), self._engine.connect() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        if self._write_engine is None:
            raise StoreUnavailable(f"{self.url.redacted} is not connected")
        async with self._guard(), self._write_lock or contextlib.nullcontext():
            async with self._write_engine.begin() as conn:
                yield conn

    # -- tenants ----------------------------------------------------------------------------------

    async def create_tenant(self, tenant: Tenant) -> None:
        try:
            async with self._write() as conn:
                await conn.execute(sa.insert(tenants).values(**_tenant_values(tenant)))
        except sa.exc.IntegrityError:
            raise Conflict(f"tenant {tenant.id!r} exists", code="tenant_exists") from None

    async def get_tenant(self, tenant_id: str) -> Tenant | None:
        return await self._one_tenant(tenants.c.id == tenant_id)

    async def get_tenant_by_key_hash(self, key_hash: str) -> Tenant | None:
        return await self._one_tenant(tenants.c.api_key_hash == key_hash)

    async def _one_tenant(self, condition: sa.ColumnElement[bool]) -> Tenant | None:
        async with self._read() as conn:
            row = (await conn.execute(sa.select(tenants).where(condition))).first()
        return None if row is None else _tenant(row)

    async def list_tenants(self) -> list[Tenant]:
        async with self._read() as conn:
            rows = await conn.execute(sa.select(tenants).order_by(tenants.c.id))
        return [_tenant(row) for row in rows]

    async def update_tenant(self, tenant: Tenant) -> None:
        async with self._write() as conn:
            values = _tenant_values(tenant)
            result = await conn.execute(sa.update(tenants).where(tenants.c.id == tenant.id).values(**values))
            if result.rowcount == 0:
                raise NotFound(f"tenant {tenant.id!r} not found")

    # -- conversations ----------------------------------------------------------------------------

    async def _load(
        self, conn: AsyncConnection, tenant: str, conversation_id: str, *, for_update: bool = False
    ) -> Conversation:
        stmt = sa.select(conversations).where(_conversation_key(tenant, conversation_id))
        if for_update:
            stmt = stmt.with_for_update()
        row = (await conn.execute(stmt)).first()
        if row is None:
            raise NotFound(f"conversation {conversation_id!r} not found")
        conversation = _conversation(row)
        if is_expired(conversation, self._clock()):
            c = conversation
            raise Expired(f"conversation {conversation_id!r} expired", user=c.user, workspace=c.workspace)
        return conversation

    async def _count(self, conn: AsyncConnection, tenant: str, user: str | None, now: int) -> int:
        c = conversations.c
        stmt = sa.select(sa.func.count()).where(c.tenant_id == tenant, _live(now))
        if user is not None:
            stmt = stmt.where(c.user_id == user)
        return int((await conn.execute(stmt)).scalar_one())

    async def create_conversation(
        self,
        conversation: Conversation,
        *,
        max_per_tenant: int | None = None,
        max_per_user: int | None = None,
    ) -> Conversation:
        now = self._clock()
        try:
            async with self._write() as conn:
                if self.dialect == "postgresql" and (max_per_tenant is not None or max_per_user is not None):
                    # Serialise this tenant's creates so the count and the insert are one step.
                    await conn.execute(
                        sa.text("SELECT pg_advisory_xact_lock(:ns, hashtext(:tenant))"),
                        {"ns": ADVISORY_NAMESPACE, "tenant": conversation.tenant},
                    )
                try:
                    await self._load(conn, conversation.tenant, conversation.id, for_update=True)
                    raise Conflict(f"conversation {conversation.id!r} exists", code="conversation_exists")
                except Expired:
                    await _purge(conn, conversation.tenant, conversation.id)
                except NotFound:
                    pass
                check_quota(
                    await self._count(conn, conversation.tenant, None, now)
                    if max_per_tenant is not None
                    else 0,
                    await self._count(conn, conversation.tenant, conversation.user, now)
                    if max_per_user is not None
                    else 0,
                    max_per_tenant,
                    max_per_user,
                )
                stored = fresh_conversation(conversation, now)
                await conn.execute(sa.insert(conversations).values(**_conversation_values(stored)))
                await _write_tags(conn, stored)
                return stored
        except sa.exc.IntegrityError:
            raise Conflict(f"conversation {conversation.id!r} exists", code="conversation_exists") from None

    async def get_conversation(self, tenant: str, conversation_id: str) -> Conversation:
        async with self._read() as conn:
            return await self._load(conn, tenant, conversation_id)

    async def list_conversations(self, query: ConversationQuery) -> ConversationPage:
        c = conversations.c
        stmt = sa.select(conversations).where(c.tenant_id == query.tenant, _live(self._clock()))
        if query.user is not None:
            stmt = stmt.where(c.user_id == query.user)
        if query.allowed_workspaces is not None:
            stmt = stmt.where(c.workspace.in_(sorted(query.allowed_workspaces)))
        if query.workspace is not None:
            stmt = stmt.where(c.workspace == query.workspace)
        for column, wanted in (
            (c.starred, query.starred),
            (c.pinned, query.pinned),
            (c.archived, query.archived),
        ):
            if wanted is not None:
                stmt = stmt.where(column == wanted)
        if query.tag is not None:
            t = conversation_tags.c
            stmt = stmt.where(
                sa.exists().where(t.tenant_id == c.tenant_id, t.conversation_id == c.id, t.tag == query.tag)
            )
        if query.text:
            stmt = stmt.where(c.title_folded.like(f"%{_escape_like(fold(query.text))}%", escape="\\"))
        if query.after is not None:
            a = query.after
            stmt = stmt.where(
                sa.tuple_(c.pinned, c.last_activity_at, c.id)
                < sa.tuple_(sa.literal(a.pinned), sa.literal(a.last_activity_at), sa.literal(a.id))
            )
        stmt = stmt.order_by(c.pinned.desc(), c.last_activity_at.desc(), c.id.desc()).limit(query.limit + 1)
        async with self._read() as conn:
            items = [_conversation(row) for row in await conn.execute(stmt)]
        more = len(items) > query.limit
        items = items[: query.limit]
        return ConversationPage(items, cursor_of(items[-1]) if more and items else None)

    async def count_conversations(self, tenant: str, user: str | None = None) -> int:
        async with self._read() as conn:
            return await self._count(conn, tenant, user, self._clock())

    async def update_conversation(
        self,
        tenant: str,
        conversation_id: str,
        patch: ConversationPatch,
        *,
        expected_version: int | None = None,
    ) -> Conversation:
        async with self._write() as conn:
            current = await self._load(conn, tenant, conversation_id, for_update=True)
            if expected_version is not None and expected_version != current.version:
                raise VersionMismatch(
                    f"conversation {conversation_id!r} is at version {current.version}",
                    current_version=current.version,
                )
            updated = apply_patch(current, patch, self._clock())
            values = _conversation_values(updated)
            await conn.execute(
                sa.update(conversations).where(_conversation_key(tenant, conversation_id)).values(**values)
            )
            if patch.tags is not None:
                await conn.execute(sa.delete(conversation_tags).where(_tags_key(tenant, conversation_id)))
                await _write_tags(conn, updated)
            return updated

    async def delete_conversation(self, tenant: str, conversation_id: str) -> Conversation:
        async with self._write() as conn:
            current = await self._load(conn, tenant, conversation_id, for_update=True)
            await _purge(conn, tenant, conversation_id)
            return current

    # -- messages ---------------------------------------------------------------------------------

    async def append_messages(
        self,
        tenant: str,
        conversation_id: str,
        messages_: Sequence[NewMessage],
        *,
        max_messages: int | None = None,
        policy: LimitPolicy = LimitPolicy.REJECT,
    ) -> AppendOutcome:
        m = messages.c
        async with self._write() as conn:
            # The row lock serialises appenders of this conversation: seq stays gapless and the
            # idempotency lookup below cannot race another insert of the same id.
            current = await self._load(conn, tenant, conversation_id, for_update=True)
            ids = sorted({new.id for new in messages_})
            rows = await conn.execute(
                sa.select(messages).where(_messages_key(tenant, conversation_id), m.id.in_(ids))
            )
            existing = {row.id: _message(row) for row in rows}
            plan = plan_append(
                current, existing, messages_, self._clock(), max_messages=max_messages, policy=policy
            )
            if plan.trim_below is not None:
                await conn.execute(
                    sa.update(messages)
                    .where(
                        _messages_key(tenant, conversation_id),
                        m.seq >= current.first_seq,
                        m.seq < plan.trim_below,
                    )
                    .values(
                        content="", parts=sa.null(), metadata=sa.null(), status=MessageStatus.TRIMMED.value
                    )
                )
            if plan.inserts:
                await conn.execute(
                    sa.insert(messages), [_message_values(tenant, msg) for msg in plan.inserts]
                )
                after = plan.conversation
                await conn.execute(
                    sa.update(conversations)
                    .where(_conversation_key(tenant, conversation_id))
                    .values(
                        last_seq=after.last_seq,
                        message_count=after.message_count,
                        last_activity_at=after.last_activity_at,
                        preview=after.preview,
                        input_tokens=after.usage.input_tokens,
                        output_tokens=after.usage.output_tokens,
                        expires_at=after.expires_at,
                    )
                )
            return AppendOutcome(plan.conversation, plan.results)

    async def read_messages(
        self,
        conversation: Conversation,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int = 50,
    ) -> MessagePage:
        m = messages.c
        stmt = sa.select(messages).where(
            _messages_key(conversation.tenant, conversation.id),
            m.seq >= conversation.first_seq,
            m.status != MessageStatus.TRIMMED.value,
        )
        ascending = after is not None
        if before is not None:
            stmt = stmt.where(m.seq < before)
        if after is not None:
            stmt = stmt.where(m.seq > after).order_by(m.seq.asc())
        else:
            stmt = stmt.order_by(m.seq.desc())
        async with self._read() as conn:
            found = [_message(row) for row in await conn.execute(stmt.limit(limit + 1))]
        page = found[:limit]
        if not ascending:
            page.reverse()
        return MessagePage(page, has_more=len(found) > limit)


def _sqlite_engine(url: sa.URL, begin: str, synchronous: str, *, pool_size: int) -> AsyncEngine:
    engine = create_async_engine(url, pool_size=pool_size, max_overflow=0)

    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # chatkeep emits BEGIN itself (below); the driver must not start or end transactions.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute(f"PRAGMA synchronous = {synchronous}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql(begin)

    return engine


def _upgrade(connection: sa.Connection) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _live(now: int) -> sa.ColumnElement[bool]:
    c = conversations.c
    return sa.or_(c.expires_at.is_(None), c.expires_at > now)


def _conversation_key(tenant: str, conversation_id: str) -> sa.ColumnElement[bool]:
    return sa.and_(conversations.c.tenant_id == tenant, conversations.c.id == conversation_id)


def _messages_key(tenant: str, conversation_id: str) -> sa.ColumnElement[bool]:
    return sa.and_(messages.c.tenant_id == tenant, messages.c.conversation_id == conversation_id)


def _tags_key(tenant: str, conversation_id: str) -> sa.ColumnElement[bool]:
    t = conversation_tags.c
    return sa.and_(t.tenant_id == tenant, t.conversation_id == conversation_id)


async def _purge(conn: AsyncConnection, tenant: str, conversation_id: str) -> None:
    await conn.execute(sa.delete(messages).where(_messages_key(tenant, conversation_id)))
    await conn.execute(sa.delete(conversation_tags).where(_tags_key(tenant, conversation_id)))
    await conn.execute(sa.delete(conversations).where(_conversation_key(tenant, conversation_id)))


async def _write_tags(conn: AsyncConnection, conversation: Conversation) -> None:
    if conversation.tags:
        await conn.execute(
            sa.insert(conversation_tags),
            [
                {"tenant_id": conversation.tenant, "conversation_id": conversation.id, "tag": t}
                for t in conversation.tags
            ],
        )


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _tenant(row: sa.Row[Any]) -> Tenant:
    return Tenant(
        id=row.id,
        name=row.name,
        api_key_hash=row.api_key_hash,
        token_secret=row.token_secret,
        created_at=row.created_at,
        settings=TenantSettings.from_json(row.settings),
    )


def _tenant_values(tenant: Tenant) -> dict[str, Any]:
    return {
        "id": tenant.id,
        "name": tenant.name,
        "api_key_hash": tenant.api_key_hash,
        "token_secret": tenant.token_secret,
        "settings": tenant.settings.to_json(),
        "created_at": tenant.created_at,
    }


def _conversation(row: sa.Row[Any]) -> Conversation:
    return Conversation(
        tenant=row.tenant_id,
        id=row.id,
        workspace=row.workspace,
        user=row.user_id,
        mode=Mode(row.mode),
        title=row.title,
        created_at=row.created_at,
        last_activity_at=row.last_activity_at,
        starred=bool(row.starred),
        pinned=bool(row.pinned),
        archived=bool(row.archived),
        tags=tuple(row.tags),
        message_count=row.message_count,
        last_seq=row.last_seq,
        preview=row.preview,
        usage=Usage(row.input_tokens, row.output_tokens),
        version=row.version,
        ttl_ms=row.ttl_ms,
        expires_at=row.expires_at,
    )


def _conversation_values(c: Conversation) -> dict[str, Any]:
    return {
        "tenant_id": c.tenant,
        "id": c.id,
        "workspace": c.workspace,
        "user_id": c.user,
        "mode": c.mode.value,
        "title": c.title,
        "title_folded": fold(c.title),
        "created_at": c.created_at,
        "last_activity_at": c.last_activity_at,
        "starred": c.starred,
        "pinned": c.pinned,
        "archived": c.archived,
        "tags": list(c.tags),
        "message_count": c.message_count,
        "last_seq": c.last_seq,
        "preview": c.preview,
        "input_tokens": c.usage.input_tokens,
        "output_tokens": c.usage.output_tokens,
        "version": c.version,
        "ttl_ms": c.ttl_ms,
        "expires_at": c.expires_at,
    }


def _message(row: sa.Row[Any]) -> Message:
    return Message(
        conversation_id=row.conversation_id,
        id=row.id,
        seq=row.seq,
        role=Role(row.role),
        content=row.content,
        created_at=row.created_at,
        parts=row.parts,
        metadata=row._mapping["metadata"],
        usage=Usage(row.input_tokens, row.output_tokens),
        status=MessageStatus(row.status),
    )


def _message_values(tenant: str, m: Message) -> dict[str, Any]:
    return {
        "tenant_id": tenant,
        "conversation_id": m.conversation_id,
        "seq": m.seq,
        "id": m.id,
        "role": m.role.value,
        "content": m.content,
        "parts": m.parts,
        "metadata": m.metadata,
        "input_tokens": m.usage.input_tokens,
        "output_tokens": m.usage.output_tokens,
        "created_at": m.created_at,
        "status": m.status.value,
    }
