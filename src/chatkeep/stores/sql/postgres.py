"""PostgreSQL's hot writes (append, a streaming delta, a finish) straight on asyncpg.

Each write is two round trips and no transaction block: one statement reads the conversation (and
the message a delta or finish names) with the row's version, the domain plans the write from it,
and one statement writes the plan only if the conversation row is still that version. An append
after this process's last append of the conversation plans on the row that append left and is one
round trip; if the row moved meanwhile (another instance, another kind of write), it reads again.
Appends to different conversations that are ready at the same time are written by one statement
(`append_groups.py`), each conditional on its own row. Statements are in `statements.py`, compiled
once to SQL text and prepared once a connection. A single statement is atomic and, committed,
durable. Nothing is locked between the two round trips, and a write that finds the row changed
writes nothing; writes to one conversation take turns in this process (`stores/locks.py`), so they
do not race each other; writes to different ones never wait for each other.

Whenever the quick way does not apply (the row changed meanwhile, a message id is already stored,
a trim, a limit that might only be reached because retried messages were counted as new), a write
returns None and the store runs its general operation, which locks the row in a transaction (see
`message_ops`). The rules stay in `chatkeep.domain`: this module only loads, plans and writes.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import replace
from typing import Any, TypeVar

import asyncpg
import sqlalchemy as sa

from chatkeep.domain import (
    after_extend,
    after_finish,
    finished,
    is_expired,
    plan_extend,
)
from chatkeep.errors import ChatkeepError, StoreUnavailable
from chatkeep.models import (
    AppendOutcome,
    Conversation,
    Message,
    Scope,
)
from chatkeep.stores.base import Extension
from chatkeep.stores.locks import KeyedLocks
from chatkeep.stores.requests import Append, Extend, Finish, Ref
from chatkeep.stores.sql import statements
from chatkeep.stores.sql.append_groups import AppendGroups
from chatkeep.stores.sql.connections import Compiled, Connections
from chatkeep.stores.sql.engine import postgres_connections
from chatkeep.stores.sql.message_ops import plan_as_new
from chatkeep.stores.sql.ops import checked, retained
from chatkeep.stores.sql.rows import activity_values, appended_values, saved_message_values
from chatkeep.stores.url import StoreURL

# A connection lost, refused or shut down: the database is unavailable. Other PostgreSQL errors
# (a message id already stored, say) leave the write to the general operation.
UNAVAILABLE = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
    OSError,
    TimeoutError,
)
# A connection that failed so, or whose protocol state the driver no longer trusts (it can be left
# so by a server that ended the connection while it sat in the pool), is closed, never reused.
BROKEN = (*UNAVAILABLE, asyncpg.InternalClientError)


READ_CONVERSATION = Compiled(statements.READ_CONVERSATION)
READ_CONVERSATION_AND_MESSAGE = Compiled(statements.READ_CONVERSATION_AND_MESSAGE)
SAVE_MESSAGE_IF_UNCHANGED = Compiled(statements.SAVE_MESSAGE_IF_UNCHANGED)


T = TypeVar("T")
# A change to a message and its conversation: the answer, and the conversation and message to save
# (no conversation: nothing changes).
Rewrite = Callable[[Conversation, Message], tuple[T, Conversation | None, Message]]

# Conversations whose row this process remembers (about 1 KB each).
REMEMBERED = 4_096


class GiveWay(Exception):
    """This write is for the general operation (`PostgresWrites` returns None)."""


class PostgresWrites:
    """The hot writes of one SqlStore, on asyncpg connections of its own (`connections.py`): up to
    the store URL's `pool_size + max_overflow` (20 by default), opened as writes need them."""

    def __init__(self, url: StoreURL, schema: str | None) -> None:
        self._dsn = sa.make_url(url.without_options()).set(drivername="postgresql")
        self._max = postgres_connections(url)
        self._server_settings = {"search_path": schema} if schema else {}
        self._redacted = url.redacted
        self._pool: Connections | None = None
        self._turns = KeyedLocks()
        self._groups = AppendGroups(self._connection)
        # By conversation, the row this process's last append left and its version: the next
        # append plans on it and skips the read (its write checks the version, as after a read).
        self._committed: OrderedDict[tuple[str, str], tuple[Conversation, int]] = OrderedDict()

    async def open(self) -> None:
        # No connection is made until the first write: opening cannot fail.
        self._pool = Connections(self._connect, self._max)

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def _connect(self) -> Any:
        conn = await asyncpg.connect(
            self._dsn.render_as_string(hide_password=False),
            timeout=10,
            server_settings=self._server_settings,
        )
        # JSON columns read as SQLAlchemy's JSON type reads them.
        for name in ("json", "jsonb"):
            await conn.set_type_codec(name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
        return conn

    # -- writes -----------------------------------------------------------------------------------

    async def append(self, request: Append, now: int) -> AppendOutcome | None:
        key = request.ref.key
        with suppress(GiveWay):
            async with self._turns.hold(key):
                recalled = self._recall(key, now, request.ref.scope)
                if recalled is not None:
                    try:
                        outcome = await self._append_on(request, now, *recalled)
                    except StoreUnavailable:
                        raise
                    except ChatkeepError:  # perhaps only so on the remembered row: answer from the stored one
                        outcome = None
                    if outcome is not None:
                        return outcome
                    self._committed.pop(key, None)
                async with self._connection() as conn:
                    row = await self._read(conn, READ_CONVERSATION, {"tenant": key[0], "cid": key[1]})
                current = checked(row, key[1], now, request.ref.scope)
                return await self._append_on(request, now, current, row["row_version"])
        return None

    async def _append_on(
        self, request: Append, now: int, current: Conversation, version: int
    ) -> AppendOutcome | None:
        """Plan the append on `current`, the conversation as it stands at row version `version`,
        and write it if the row is still that version."""
        r = request
        plan = plan_as_new(current, r, now)
        if plan is None or plan.trim_below is not None:
            return None
        if not plan.inserts:
            return AppendOutcome(plan.conversation, plan.results)
        after = plan.conversation
        counters = {**appended_values(r.ref.key[0], after), "row_version": version}
        fields = {
            name: [_field(message, name) for message in plan.inserts] for name in statements.MESSAGE_FIELDS
        }
        try:
            written = await self._groups.write(counters, fields)
        except (asyncpg.PostgresError, *BROKEN) as exc:
            # Refused (a message id already stored, say: the general operation answers it), or the
            # connection was lost, perhaps a pooled one the server had ended, whose first statement
            # this was: the general operation runs on another. Appends are idempotent by id: had the
            # lost write been applied after all, its messages are stored once and answered as such.
            raise GiveWay from exc
        if written is None:
            return None
        self._remember(r.ref.key, after, written)
        return AppendOutcome(after, plan.results)

    def _recall(self, key: tuple[str, str], now: int, scope: Scope) -> tuple[Conversation, int] | None:
        """The conversation and row version this process's last append of it left, if the caller
        may see it and it is live by it. Written on only if the row is still that version."""
        recalled = self._committed.get(key)
        if recalled is None:
            return None
        conversation = recalled[0]
        if not scope.admits(conversation.user, conversation.workspace) or is_expired(conversation, now):
            return None  # read it: the stored row decides the answer
        self._committed.move_to_end(key)
        return recalled

    def _remember(self, key: tuple[str, str], conversation: Conversation, version: int) -> None:
        self._committed[key] = (conversation, version)
        self._committed.move_to_end(key)
        if len(self._committed) > REMEMBERED:
            self._committed.popitem(last=False)

    async def extend(self, request: Extend, now: int) -> Extension | None:
        r = request

        def plan(current: Conversation, message: Message) -> tuple[Extension, Conversation | None, Message]:
            at, suffix = plan_extend(message, r.text, r.offset, r.max_bytes)
            if not suffix:
                return Extension(current, message, at, suffix), None, message
            grown = replace(message, content=message.content + suffix)
            after = after_extend(current, grown, now)
            return Extension(after, grown, at, suffix), after, grown

        return await self._rewrite(r.ref, r.message_id, now, plan)

    async def finish(self, request: Finish, now: int) -> Message | None:
        r = request

        def plan(current: Conversation, before: Message) -> tuple[Message, Conversation | None, Message]:
            after = finished(before, r.status, r.usage)
            if after is None:
                return before, None, before
            return after, after_finish(current, before, after, now), after

        return await self._rewrite(r.ref, r.message_id, now, plan)

    async def _rewrite(self, ref: Ref, message_id: str, now: int, plan: Rewrite[T]) -> T | None:
        """Read a message and its conversation, plan the change on them, and save the message and
        the conversation the plan changed if the row is still as it was read. The plan's answer,
        or None for the general operation."""
        (tenant, cid), scope = ref.key, ref.scope
        with suppress(GiveWay):
            async with self._turns.hold((tenant, cid)), self._connection() as conn:
                current, message, version = await self._read_message(
                    conn, tenant, cid, message_id, now, scope
                )
                answer, conversation, saved = plan(current, message)
                if conversation is None or await self._save(conn, tenant, conversation, saved, version, now):
                    return answer
        return None

    # -- steps ------------------------------------------------------------------------------------

    async def _read_message(
        self, conn: Any, tenant: str, cid: str, message_id: str, now: int, scope: Scope
    ) -> tuple[Conversation, Message, int]:
        params = {"tenant": tenant, "cid": cid, "mid": message_id}
        row = await self._read(conn, READ_CONVERSATION_AND_MESSAGE, params)
        current = checked(row, cid, now, scope)
        held = None
        if row["message_seq"] is not None:
            held = {
                "conversation_id": cid,
                **{name: row[f"message_{name}"] for name in statements.MESSAGE_FIELDS},
            }
        return current, retained(held, current, message_id), row["row_version"]

    async def _save(
        self, conn: Any, tenant: str, conversation: Conversation, message: Message, version: int, now: int
    ) -> bool:
        params = {
            **activity_values(conversation),
            **saved_message_values(tenant, message, now),
            "row_version": version,
        }
        return bool(await self._write(conn, SAVE_MESSAGE_IF_UNCHANGED, params))

    def _connection(self) -> Any:
        if self._pool is None:
            raise StoreUnavailable(f"{self._redacted} is not connected")
        return _Acquired(self._pool, self._redacted)

    async def _read(self, conn: Any, statement: Compiled, params: Mapping[str, Any]) -> Any:
        """The row, or None when there is none."""
        try:
            return await conn.fetchrow(statement.sql, *statement.args(params))
        except (asyncpg.PostgresError, *BROKEN) as exc:
            # A connection gone stale, say: the general operation retries reads once.
            raise GiveWay from exc

    async def _write(self, conn: Any, statement: Compiled, params: Mapping[str, Any]) -> list[Any]:
        """The rows written; GiveWay when PostgreSQL refused the statement (nothing was written)."""
        try:
            rows: list[Any] = await conn.fetch(statement.sql, *statement.args(params))
        except BROKEN as exc:
            # Perhaps committed, perhaps not: as with any write whose answer was lost.
            raise StoreUnavailable(f"{self._redacted} is unavailable ({type(exc).__name__})") from exc
        except asyncpg.PostgresError as exc:
            raise GiveWay from exc
        return rows


class _Acquired:
    """A connection for one statement or write; failing to get one is StoreUnavailable. One that
    failed so that it cannot be trusted is closed."""

    def __init__(self, pool: Connections, redacted: str) -> None:
        self._pool = pool
        self._redacted = redacted
        self._conn: Any = None

    async def __aenter__(self) -> Any:
        try:
            self._conn = await self._pool.acquire()
        except UNAVAILABLE as exc:
            raise StoreUnavailable(f"{self._redacted} is unavailable ({type(exc).__name__})") from exc
        return self._conn

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, _: object
    ) -> bool:
        cause = error.__cause__ if isinstance(error, GiveWay | StoreUnavailable) else error
        self._pool.release(self._conn, broken=isinstance(cause, BROKEN))
        return False


def _field(message: Message, name: str) -> Any:
    if name in statements.JSON_FIELDS:
        value = getattr(message, name)
        return None if value is None else json.dumps(value)
    if name == "role" or name == "status":
        return getattr(message, name).value
    if name == "input_tokens":
        return message.usage.input_tokens
    if name == "output_tokens":
        return message.usage.output_tokens
    return getattr(message, name)
