"""SQLite's hot writes (an append, a streaming delta, a finish) on the sqlite3 connection itself.

Every write of the SQLite store runs in its writer thread (`writer.py`). Run through SQLAlchemy, these
three spent far more of that thread's time in the execution machinery (cache keys, parameter
processing, result setup) than in SQLite, and that Python work holds the GIL against the event loop
serving requests. Here they run the same statements (`statements.py`, compiled here once to SQL text,
with the conversions of their columns' types) on the driver connection under the writer's SQLAlchemy
Connection, so in the same transaction and savepoint. The domain plans each write, as everywhere.

An append that meets a message id already stored, or a limit that may only be reached because retried
messages were counted as new, writes nothing here and is left to the general operation
(`message_ops.append_messages`) in the same transaction.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.sql.compiler import SQLCompiler

from chatkeep.domain import (
    after_extend,
    after_finish,
    errors,
    finished,
    plan_append,
    plan_extend,
)
from chatkeep.errors import QuotaExceeded
from chatkeep.models import AppendOutcome, Conversation, Message, Scope
from chatkeep.stores.base import Extension
from chatkeep.stores.requests import Append, Extend, Finish
from chatkeep.stores.sql import message_ops, statements
from chatkeep.stores.sql.ops import checked
from chatkeep.stores.sql.rows import (
    activity_values,
    appended_values,
    message_of,
    message_values,
    saved_message_values,
)

# The store's engine sets no JSON serializer of its own: this dialect converts as that engine's does.
DIALECT = sqlite_dialect.dialect()
Convert = Callable[[Any], Any] | None


class Compiled:
    """A statement as SQL text with positional parameters, and the conversions SQLAlchemy applies to
    its parameters and result columns (JSON to and from text, say), taken from their types."""

    def __init__(self, statement: sa.ClauseElement) -> None:
        compiled = cast(SQLCompiler, statement.compile(dialect=DIALECT))
        self.sql = str(compiled)
        self.names = tuple(compiled.positiontup or ())
        binds = [compiled.binds[name] for name in self.names]
        self._take = _taker(self.names)
        # A parameter the statement gives a value itself (TRIM_MESSAGES' status) keeps that value.
        self._given = {
            name: compiled.binds[name].value for name in self.names if not compiled.binds[name].required
        }
        self._convert = _conversions([_bind_conversion(bind.type) for bind in binds])
        selected = statement.selected_columns if isinstance(statement, sa.Select) else ()
        self.columns = tuple(str(column.key) for column in selected)
        self._convert_columns = [
            (self.columns[i], convert)
            for i, convert in _conversions([_result_conversion(column.type) for column in selected])
        ]

    def args(self, params: Mapping[str, Any]) -> Sequence[Any]:
        if self._given:
            params = {**params, **self._given}
        values = self._take(params)
        if not self._convert:
            return values
        converted = list(values)
        for i, convert in self._convert:
            converted[i] = convert(converted[i])
        return converted

    def execute(self, db: Any, params: Mapping[str, Any]) -> Any:
        return db.execute(self.sql, self.args(params))

    def first(self, db: Any, params: Mapping[str, Any]) -> dict[str, Any] | None:
        """The first row, by column name, or None when there is none."""
        row = self.execute(db, params).fetchone()
        if row is None:
            return None
        columns = dict(zip(self.columns, row, strict=True))
        for name, convert in self._convert_columns:
            columns[name] = convert(columns[name])
        return columns


def _taker(names: Sequence[str]) -> Callable[[Mapping[str, Any]], Sequence[Any]]:
    """A function of the parameters to their values in `names`' order (`itemgetter` is the quickest)."""
    if len(names) > 1:
        return operator.itemgetter(*names)
    return lambda params: [params[name] for name in names]


def _conversions(conversions: Sequence[Convert]) -> list[tuple[int, Callable[[Any], Any]]]:
    """The conversions there are, by position."""
    return [(i, convert) for i, convert in enumerate(conversions) if convert is not None]


def _bind_conversion(type_: sa.types.TypeEngine[Any]) -> Convert:
    return type_.dialect_impl(DIALECT).bind_processor(DIALECT)


def _result_conversion(type_: sa.types.TypeEngine[Any]) -> Convert:
    return type_.dialect_impl(DIALECT).result_processor(DIALECT, None)


GET_CONVERSATION = Compiled(statements.GET_CONVERSATION)
GET_MESSAGE = Compiled(statements.GET_MESSAGE)
INSERT_NEW_MESSAGE = Compiled(statements.INSERT_NEW_MESSAGE["sqlite"])
TRIM_MESSAGES = Compiled(statements.TRIM_MESSAGES)
UPDATE_AFTER_APPEND = Compiled(statements.UPDATE_AFTER_APPEND)
SAVE_MESSAGE = Compiled(statements.SAVE_MESSAGE)
SAVE_ACTIVITY = Compiled(statements.SAVE_ACTIVITY)


# -- writes: each runs in the writer thread, on its SQLAlchemy Connection's driver connection ------------


def append(conn: sa.Connection, request: Append, now: int) -> AppendOutcome:
    r = request
    tenant, cid = r.ref.key
    db = driver(conn)
    current = _conversation(db, tenant, cid, now, r.ref.scope)
    try:
        plan = plan_append(current, {}, r.messages, now, max_messages=r.max_messages, policy=r.policy)
    except QuotaExceeded:
        plan = None  # perhaps only because retried messages were counted as new
    if plan is None or not _insert_new(db, tenant, plan.inserts):
        return message_ops.append_messages(
            conn, tenant, cid, r.messages, now, r.max_messages, r.policy, r.ref.scope
        )
    if plan.trim_below is not None:
        TRIM_MESSAGES.execute(
            db, {"tenant": tenant, "cid": cid, "low": current.first_seq, "high": plan.trim_below}
        )
    if plan.inserts:
        UPDATE_AFTER_APPEND.execute(db, appended_values(tenant, plan.conversation))
    return AppendOutcome(plan.conversation, plan.results)


def extend(conn: sa.Connection, request: Extend, now: int) -> Extension:
    r = request
    tenant, cid = r.ref.key
    db = driver(conn)
    current = _conversation(db, tenant, cid, now, r.ref.scope)
    message = _message(db, current, r.message_id)
    at, suffix = plan_extend(message, r.text, r.offset, r.max_bytes)
    if suffix:
        message = replace(message, content=message.content + suffix)
        SAVE_MESSAGE.execute(db, saved_message_values(tenant, message, now))
        current = after_extend(current, message, now)
        SAVE_ACTIVITY.execute(db, activity_values(current))
    return Extension(current, message, at, suffix)


def finish(conn: sa.Connection, request: Finish, now: int) -> Message:
    r = request
    tenant, cid = r.ref.key
    db = driver(conn)
    current = _conversation(db, tenant, cid, now, r.ref.scope)
    before = _message(db, current, r.message_id)
    after = finished(before, r.status, r.usage)
    if after is None:
        return before
    SAVE_MESSAGE.execute(db, saved_message_values(tenant, after, now))
    SAVE_ACTIVITY.execute(db, activity_values(after_finish(current, before, after, now)))
    return after


def driver(conn: sa.Connection) -> Any:
    """The sqlite3 connection under `conn`, in the same transaction."""
    return conn.connection.driver_connection


# -- steps ----------------------------------------------------------------------------------------


def _conversation(db: Any, tenant: str, cid: str, now: int, scope: Scope) -> Conversation:
    # The writer holds SQLite's write lock (BEGIN IMMEDIATE): the row stays as read until the commit.
    return checked(GET_CONVERSATION.first(db, {"tenant": tenant, "cid": cid}), cid, now, scope)


def _message(db: Any, conversation: Conversation, message_id: str) -> Message:
    params = {"tenant": conversation.tenant, "cid": conversation.id, "mid": message_id}
    row = GET_MESSAGE.first(db, params)
    if row is None or row["seq"] < conversation.first_seq:
        raise errors.message_not_found(message_id)
    return message_of(row)


def _insert_new(db: Any, tenant: str, inserts: Sequence[Message]) -> bool:
    """Insert messages assuming their ids are new: True when all were, False (and nothing inserted)
    when some id was stored before."""
    rows = [INSERT_NEW_MESSAGE.args(message_values(tenant, message)) for message in inserts]
    if len(rows) <= 1:
        # One row inserts or not: nothing to undo.
        return not rows or bool(db.execute(INSERT_NEW_MESSAGE.sql, rows[0]).rowcount == 1)
    db.execute("SAVEPOINT chatkeep_insert")
    inserted = 0
    for start in range(0, len(rows), ROWS_A_STATEMENT):
        chunk = rows[start : start + ROWS_A_STATEMENT]
        inserted += db.execute(_insert_rows(len(chunk)), [value for row in chunk for value in row]).rowcount
    if inserted != len(rows):
        db.execute("ROLLBACK TO chatkeep_insert")
    db.execute("RELEASE chatkeep_insert")
    return inserted == len(rows)


# A batch goes in statements of up to this many rows (1,300 parameters; SQLite allows 32,766): one
# statement is one step of SQLite's, where `executemany` takes one a row, each releasing the GIL and
# waiting to take it back from the event loop.
ROWS_A_STATEMENT = 100


@functools.cache  # at most ROWS_A_STATEMENT texts
def _insert_rows(count: int) -> str:
    """INSERT_NEW_MESSAGE with `count` rows of values, taking the parameters of one row after another,
    each in the order of INSERT_NEW_MESSAGE's."""
    names = INSERT_NEW_MESSAGE.names
    columns = statements.m
    rows = [
        {name: sa.bindparam(f"{name}_{i}", type_=columns[name].type) for name in names} for i in range(count)
    ]
    compiled = statements.INSERT_NEW_MESSAGE["sqlite"].values(rows).compile(dialect=DIALECT)
    if list(compiled.positiontup or ()) != [f"{name}_{i}" for i in range(count) for name in names]:
        raise RuntimeError("SQLAlchemy orders the parameters of a multi-row INSERT another way")
    return str(compiled)
