"""Message operations in one transaction (SQLite and PostgreSQL alike): append, streaming replies
and page reads. The writes run their statements through a `Run`; the SQLite store's writer runs them
on the sqlite3 connection itself (`sqlite.py`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

import sqlalchemy as sa

from chatkeep.domain import (
    AppendPlan,
    after_extend,
    after_finish,
    finished,
    is_expired,
    plan_append,
    plan_extend,
)
from chatkeep.errors import NotFound, QuotaExceeded
from chatkeep.models import AppendOutcome, Conversation, Message, MessagePage, MessageStatus
from chatkeep.stores.base import Extension
from chatkeep.stores.requests import Append, Extend, Finish, Read, Ref
from chatkeep.stores.sql.ops import checked, claimed, load, retained
from chatkeep.stores.sql.rows import (
    Columns,
    activity_values,
    appended_values,
    message_of,
    message_values,
    saved_message_values,
)
from chatkeep.stores.sql.schema import messages
from chatkeep.stores.sql.statements import (
    AFTER_PAGE,
    BEFORE_PAGE,
    DELETE_MESSAGES_BY_ID,
    FIND_MESSAGES_BY_ID,
    GET_MESSAGE,
    INSERT_MESSAGE,
    INSERT_NEW_MESSAGE,
    LATEST_PAGE,
    LOCK_CONVERSATION,
    RANGE_PAGE,
    SAVE_ACTIVITY,
    SAVE_MESSAGE,
    TRIM_MESSAGES,
    UPDATE_AFTER_APPEND,
)

m = messages.c


class Run(Protocol):
    """Runs the statements of the message writes in one transaction: through SQLAlchemy (`Statements`)
    or, for SQLite's writer, on the sqlite3 connection itself (`sqlite.Driver`)."""

    conn: sa.Connection

    def first(self, statement: sa.Executable, params: Mapping[str, Any]) -> Columns | None: ...

    def execute(self, statement: sa.Executable, params: Mapping[str, Any]) -> None: ...

    def insert_new(self, tenant: str, inserts: Sequence[Message]) -> bool:
        """Insert messages assuming their ids are new: True when all were, False (and nothing
        inserted) when some id was stored before."""
        ...


class Statements:
    """Runs them through SQLAlchemy, on any dialect."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def first(self, statement: sa.Executable, params: Mapping[str, Any]) -> Columns | None:
        row = self.conn.execute(statement, params).first()
        return None if row is None else row._mapping

    def execute(self, statement: sa.Executable, params: Mapping[str, Any]) -> None:
        self.conn.execute(statement, params)

    def insert_new(self, tenant: str, inserts: Sequence[Message]) -> bool:
        values = [message_values(tenant, message) for message in inserts]
        inserted = set(self.conn.execute(_INSERT_NEW[self.conn.dialect.name], values).scalars())
        if len(inserted) == len(inserts):
            return True
        if inserted:
            cid = inserts[0].conversation_id
            self.conn.execute(DELETE_MESSAGES_BY_ID, {"tenant": tenant, "cid": cid, "ids": sorted(inserted)})
        return False


# RETURNING the ids inserted, so that an optimistic insert that met a stored id can be undone.
_INSERT_NEW = {dialect: insert.returning(m.id) for dialect, insert in INSERT_NEW_MESSAGE.items()}

# -- messages ---------------------------------------------------------------------------------------


def append(run: Run, request: Append, now: int) -> AppendOutcome:
    # The row lock serialises appenders of this conversation (SQLite serialises all writers), so
    # seqs stay gapless and no other transaction inserts into this conversation meanwhile.
    r = request
    tenant, cid = r.ref.key
    current = _conversation(run, r.ref, now)
    plan = plan_as_new(current, r, now)
    if plan is None or not run.insert_new(tenant, plan.inserts):
        # Some ids were stored before (retries): look them up and plan again. The lookup is the
        # only query here whose cost depends on the planner, and it runs only for retries.
        ids = sorted({n.id for n in r.messages})
        rows = run.conn.execute(FIND_MESSAGES_BY_ID, {"tenant": tenant, "cid": cid, "ids": ids})
        existing = {row.id: message_of(row._mapping) for row in rows}
        plan = plan_append(current, existing, r.messages, now, max_messages=r.max_messages, policy=r.policy)
        if plan.inserts:
            run.conn.execute(INSERT_MESSAGE, [message_values(tenant, message) for message in plan.inserts])
    if plan.trim_below is not None:
        run.execute(
            TRIM_MESSAGES, {"tenant": tenant, "cid": cid, "low": current.first_seq, "high": plan.trim_below}
        )
    if plan.inserts:
        run.execute(UPDATE_AFTER_APPEND, appended_values(tenant, plan.conversation))
    return AppendOutcome(plan.conversation, plan.results)


def plan_as_new(current: Conversation, request: Append, now: int) -> AppendPlan | None:
    """The plan if every id is new, which is the common case and needs no lookup; None when the
    assumption broke a limit."""
    r = request
    try:
        return plan_append(current, {}, r.messages, now, max_messages=r.max_messages, policy=r.policy)
    except QuotaExceeded:
        return None  # perhaps only because retries were counted as new


def extend(run: Run, request: Extend, now: int) -> Extension:
    r = request
    current = _conversation(run, r.ref, now)
    message = _message(run, current, r.message_id)
    at, suffix = plan_extend(message, r.text, r.offset, r.max_bytes)
    if suffix:
        message = replace(message, content=message.content + suffix)
        run.execute(SAVE_MESSAGE, saved_message_values(r.ref.tenant, message, now))
        current = after_extend(current, message, now)
        run.execute(SAVE_ACTIVITY, activity_values(current))
    return Extension(current, message, at, suffix)


def finish(run: Run, request: Finish, now: int) -> Message:
    r = request
    current = _conversation(run, r.ref, now)
    before = _message(run, current, r.message_id)
    after = finished(before, r.status, r.usage)
    if after is None:
        return before
    run.execute(SAVE_MESSAGE, saved_message_values(r.ref.tenant, after, now))
    run.execute(SAVE_ACTIVITY, activity_values(after_finish(current, before, after, now)))
    return after


def _conversation(run: Run, ref: Ref, now: int) -> Conversation:
    """The conversation, its row locked (SQLite's writer holds the write lock: the row stays as read)."""
    row = run.first(LOCK_CONVERSATION, {"tenant": ref.tenant, "cid": ref.conversation_id})
    return checked(row, ref.conversation_id, now, ref.scope)


def _message(run: Run, conversation: Conversation, message_id: str) -> Message:
    row = run.first(GET_MESSAGE, {"tenant": conversation.tenant, "cid": conversation.id, "mid": message_id})
    return retained(row, conversation, message_id)


def interrupt_stale_streams(
    conn: sa.Connection, now: int, idle_ms: int, limit: int
) -> list[tuple[Conversation, Message]]:
    stale = (
        sa.select(m.tenant_id, m.conversation_id, m.id)
        .where(m.status == MessageStatus.STREAMING.value, m.updated_at <= now - idle_ms)
        .order_by(m.updated_at)
        .limit(limit)
    )
    done = []
    for row in conn.execute(claimed(conn, stale)).all():
        try:
            ref = Ref(row.tenant_id, row.conversation_id)
            message = finish(Statements(conn), Finish(ref, row.id, MessageStatus.INTERRUPTED), now)
            done.append((load(conn, row.tenant_id, row.conversation_id, now), message))
        except NotFound:  # its conversation expired meanwhile: the sweeper removes it
            continue
    return done


def read(conn: sa.Connection, request: Read, now: int) -> MessagePage:
    conversation, before, after, limit = request.conversation, request.before, request.after, request.limit
    if is_expired(conversation, now):
        return MessagePage([], has_more=False)
    params: dict[str, Any] = {
        "tenant": conversation.tenant,
        "cid": conversation.id,
        "first_seq": conversation.first_seq,
        "n": limit + 1,
        "before": before,
        "after": after,
    }
    if after is not None:
        stmt = AFTER_PAGE if before is None else RANGE_PAGE
    else:
        stmt = LATEST_PAGE if before is None else BEFORE_PAGE
    found = [message_of(row._mapping) for row in conn.execute(stmt, params)]
    page = found[:limit]
    if after is None:
        page.reverse()
    return MessagePage(page, has_more=len(found) > limit)
