"""SQLite's hot writes (an append, a streaming delta, a finish) on the sqlite3 connection itself.

Every write of the SQLite store runs in its writer thread (`writer.py`). Run through SQLAlchemy, these
three spent far more of that thread's time in the execution machinery (cache keys, parameter
processing, result setup) than in SQLite, and that Python work holds the GIL against the event loop
serving requests. Here `Driver` runs the operations of `message_ops.py` with the same statements
(`statements.py`, compiled here once to SQL text, with the conversions of their columns' types) on the
driver connection under the writer's SQLAlchemy Connection, so in the same transaction and savepoint.

An append that meets a message id already stored, or a limit that may only be reached because retried
messages were counted as new, looks the stored ones up through SQLAlchemy, in the same transaction.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.sql.compiler import SQLCompiler

from chatkeep.models import Message
from chatkeep.stores.sql import statements
from chatkeep.stores.sql.rows import message_values

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


# The statements `message_ops` runs through a Run, compiled once.
COMPILED: dict[sa.Executable, Compiled] = {
    statement: Compiled(statement)
    for statement in (
        statements.LOCK_CONVERSATION,
        statements.GET_MESSAGE,
        statements.TRIM_MESSAGES,
        statements.UPDATE_AFTER_APPEND,
        statements.SAVE_MESSAGE,
        statements.SAVE_ACTIVITY,
    )
}
INSERT_NEW_MESSAGE = Compiled(statements.INSERT_NEW_MESSAGE["sqlite"])


class Driver:
    """A `message_ops.Run` on the sqlite3 connection under `conn` (the writer's), in its transaction."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self._db: Any = conn.connection.driver_connection

    def first(self, statement: sa.Executable, params: Mapping[str, Any]) -> dict[str, Any] | None:
        return COMPILED[statement].first(self._db, params)

    def execute(self, statement: sa.Executable, params: Mapping[str, Any]) -> None:
        COMPILED[statement].execute(self._db, params)

    def insert_new(self, tenant: str, inserts: Sequence[Message]) -> bool:
        db = self._db
        rows = [INSERT_NEW_MESSAGE.args(message_values(tenant, message)) for message in inserts]
        if len(rows) <= 1:
            # One row inserts or not: nothing to undo.
            return not rows or bool(db.execute(INSERT_NEW_MESSAGE.sql, rows[0]).rowcount == 1)
        db.execute("SAVEPOINT chatkeep_insert")
        inserted = 0
        for start in range(0, len(rows), ROWS_A_STATEMENT):
            chunk = rows[start : start + ROWS_A_STATEMENT]
            inserted += db.execute(
                _insert_rows(len(chunk)), [value for row in chunk for value in row]
            ).rowcount
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
