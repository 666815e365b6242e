"""Message operations over one SQLAlchemy Core connection (SQLite and PostgreSQL alike): append,
streaming replies and page reads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

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
    message_of,
    message_values,
)
from chatkeep.stores.sql.schema import conversations, messages
from chatkeep.stores.sql.statements import (
    AFTER_PAGE,
    BEFORE_PAGE,
    CONVERSATION_KEY,
    DELETE_MESSAGES_BY_ID,
    FIND_MESSAGES_BY_ID,
    GET_MESSAGE,
    INSERT_MESSAGE,
    LATEST_PAGE,
    MESSAGES_KEY,
    RANGE_PAGE,
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
        after = plan.conversation
        conn.execute(
            UPDATE_AFTER_APPEND,
            {
                **key,
                "last_seq": after.last_seq,
                "message_count": after.message_count,
                "last_activity_at": after.last_activity_at,
                "preview": after.preview,
                "input_tokens": after.usage.input_tokens,
                "output_tokens": after.usage.output_tokens,
                "expires_at": after.expires_at,
            },
        )
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
    inserted = set(conn.execute(_insert_new(conn.dialect.name), values).scalars())
    if len(inserted) == len(plan.inserts):
        return plan
    if inserted:
        conn.execute(DELETE_MESSAGES_BY_ID, {"tenant": tenant, "cid": current.id, "ids": sorted(inserted)})
    return None


def _insert_new(dialect: str) -> Any:
    """INSERT ... ON CONFLICT (tenant, conversation, id) DO NOTHING RETURNING id."""
    statement = _INSERT_NEW.get(dialect)
    if statement is None:
        insert = sqlite_insert if dialect == "sqlite" else postgresql_insert
        statement = (
            insert(messages)
            .on_conflict_do_nothing(index_elements=["tenant_id", "conversation_id", "id"])
            .returning(m.id)
        )
        _INSERT_NEW[dialect] = statement
    return statement


_INSERT_NEW: dict[str, Any] = {}


def _load_message(conn: sa.Connection, conversation: Conversation, message_id: str) -> Message:
    row = conn.execute(
        GET_MESSAGE, {"tenant": conversation.tenant, "cid": conversation.id, "mid": message_id}
    ).first()
    if row is None or row.seq < conversation.first_seq:
        raise errors.message_not_found(message_id)
    return message_of(row._mapping)


def _save_message(conn: sa.Connection, tenant: str, message: Message, now: int) -> None:
    conn.execute(
        sa.update(messages)
        .where(MESSAGES_KEY, m.seq == message.seq)
        .values(
            content=message.content,
            status=message.status.value,
            input_tokens=message.usage.input_tokens,
            output_tokens=message.usage.output_tokens,
            updated_at=now,
        ),
        {"tenant": tenant, "cid": message.conversation_id},
    )


def _save_activity(conn: sa.Connection, conversation: Conversation) -> None:
    c_ = conversation
    conn.execute(
        sa.update(conversations)
        .where(CONVERSATION_KEY)
        .values(
            last_activity_at=c_.last_activity_at,
            expires_at=c_.expires_at,
            preview=c_.preview,
            input_tokens=c_.usage.input_tokens,
            output_tokens=c_.usage.output_tokens,
        ),
        {"tenant": c_.tenant, "cid": c_.id},
    )


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
