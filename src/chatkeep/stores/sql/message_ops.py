"""Message operations over one SQLAlchemy Core connection (SQLite and PostgreSQL alike): append,
streaming replies and page reads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import sqlalchemy as sa

from chatkeep.domain import (
    AppendPlan,
    after_extend,
    after_finish,
    check_appendable,
    errors,
    finished,
    is_expired,
    plan_append,
    plan_extend,
)
from chatkeep.errors import NotFound, QuotaExceeded
from chatkeep.models import (
    ANYONE,
    AppendOutcome,
    Conversation,
    LimitPolicy,
    Message,
    MessagePage,
    MessageStatus,
    NewMessage,
    Scope,
    Usage,
)
from chatkeep.stores.base import Extension
from chatkeep.stores.sql.ops import load
from chatkeep.stores.sql.rows import (
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
    RANGE_PAGE,
    SAVE_ACTIVITY,
    SAVE_MESSAGE,
    TRIM_MESSAGES,
    UPDATE_AFTER_APPEND,
)

m = messages.c

# -- messages ---------------------------------------------------------------------------------------


def append_messages(
    conn: sa.Connection,
    tenant: str,
    cid: str,
    new: Sequence[NewMessage],
    now: int,
    max_messages: int | None,
    policy: LimitPolicy,
    scope: Scope,
) -> AppendOutcome:
    # The row lock serialises appenders of this conversation (SQLite serialises all writers), so
    # seqs stay gapless and no other transaction inserts into this conversation meanwhile.
    key = {"tenant": tenant, "cid": cid}
    current = load(conn, tenant, cid, now, scope=scope, for_update=True)
    check_appendable(current)
    plan = _optimistic_insert(conn, tenant, current, new, now, max_messages, policy)
    if plan is None:
        # Some ids were stored before (retries): look them up and plan again. The lookup is the
        # only query here whose cost depends on the planner, and it runs only for retries.
        rows = conn.execute(FIND_MESSAGES_BY_ID, {**key, "ids": sorted({n.id for n in new})})
        existing = {row.id: message_of(row._mapping) for row in rows}
        plan = plan_append(current, existing, new, now, max_messages=max_messages, policy=policy)
        if plan.inserts:
            conn.execute(INSERT_MESSAGE, [message_values(tenant, message) for message in plan.inserts])
    if plan.trim_below is not None:
        conn.execute(TRIM_MESSAGES, {**key, "low": current.first_seq, "high": plan.trim_below})
    if plan.inserts:
        conn.execute(UPDATE_AFTER_APPEND, appended_values(tenant, plan.conversation))
    return AppendOutcome(plan.conversation, plan.results)


def _optimistic_insert(
    conn: sa.Connection,
    tenant: str,
    current: Conversation,
    new: Sequence[NewMessage],
    now: int,
    max_messages: int | None,
    policy: LimitPolicy,
) -> AppendPlan | None:
    """Insert assuming every id is new, which is the common case and needs no lookup. Returns the plan,
    or None (with nothing left inserted) when some id already existed or the assumption broke a limit."""
    try:
        plan = plan_append(current, {}, new, now, max_messages=max_messages, policy=policy)
    except QuotaExceeded:
        return None  # perhaps only because replays were counted as new
    values = [message_values(tenant, message) for message in plan.inserts]
    inserted = set(conn.execute(_INSERT_NEW[conn.dialect.name], values).scalars())
    if len(inserted) == len(plan.inserts):
        return plan
    if inserted:
        conn.execute(DELETE_MESSAGES_BY_ID, {"tenant": tenant, "cid": current.id, "ids": sorted(inserted)})
    return None


# RETURNING the ids inserted, so that an optimistic insert that met a stored id can be undone.
_INSERT_NEW = {dialect: insert.returning(m.id) for dialect, insert in INSERT_NEW_MESSAGE.items()}


def _load_message(conn: sa.Connection, conversation: Conversation, message_id: str) -> Message:
    row = conn.execute(
        GET_MESSAGE, {"tenant": conversation.tenant, "cid": conversation.id, "mid": message_id}
    ).first()
    if row is None or row.seq < conversation.first_seq:
        raise errors.message_not_found(message_id)
    return message_of(row._mapping)


def _save_message(conn: sa.Connection, tenant: str, message: Message, now: int) -> None:
    conn.execute(SAVE_MESSAGE, saved_message_values(tenant, message, now))


def _save_activity(conn: sa.Connection, conversation: Conversation) -> None:
    conn.execute(SAVE_ACTIVITY, activity_values(conversation))


def extend_message(
    conn: sa.Connection,
    tenant: str,
    cid: str,
    message_id: str,
    text: str,
    offset: int | None,
    max_bytes: int | None,
    now: int,
    scope: Scope,
) -> Extension:
    current = load(conn, tenant, cid, now, scope=scope, for_update=True)
    message = _load_message(conn, current, message_id)
    at, suffix = plan_extend(message, text, offset, max_bytes)
    if suffix:
        message = replace(message, content=message.content + suffix)
        _save_message(conn, tenant, message, now)
        current = after_extend(current, message, now)
        _save_activity(conn, current)
    return Extension(current, message, at, suffix)


def finish_message(
    conn: sa.Connection,
    tenant: str,
    cid: str,
    message_id: str,
    status: MessageStatus,
    usage: Usage | None,
    now: int,
    scope: Scope,
) -> Message:
    current = load(conn, tenant, cid, now, scope=scope, for_update=True)
    before = _load_message(conn, current, message_id)
    after = finished(before, status, usage)
    if after is None:
        return before
    _save_message(conn, tenant, after, now)
    _save_activity(conn, after_finish(current, before, after, now))
    return after


def interrupt_stale_streams(
    conn: sa.Connection, now: int, idle_ms: int, limit: int
) -> list[tuple[Conversation, Message]]:
    stale = (
        sa.select(m.tenant_id, m.conversation_id, m.id)
        .where(m.status == MessageStatus.STREAMING.value, m.updated_at <= now - idle_ms)
        .order_by(m.updated_at)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        stale = stale.with_for_update(skip_locked=True)  # concurrent sweepers take disjoint rows
    done = []
    for row in conn.execute(stale).all():
        try:
            message = finish_message(
                conn, row.tenant_id, row.conversation_id, row.id, MessageStatus.INTERRUPTED, None, now, ANYONE
            )
            done.append((load(conn, row.tenant_id, row.conversation_id, now), message))
        except NotFound:  # its conversation expired meanwhile: the sweeper removes it
            continue
    return done


def read_messages(
    conn: sa.Connection,
    conversation: Conversation,
    before: int | None,
    after: int | None,
    limit: int,
    now: int,
) -> MessagePage:
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
