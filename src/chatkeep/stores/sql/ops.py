"""The tenant and conversation operations of the store, each a plain function over a SQLAlchemy
`Connection` (messages: `message_ops.py`; statements: `statements.py`; rows: `rows.py`).

SQLite and PostgreSQL run these same functions: SqlStore calls them in a worker thread on SQLite and
through `AsyncConnection.run_sync` on PostgreSQL. Each function is one transaction's worth of work.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from chatkeep.domain import (
    apply_patch,
    check_quota,
    errors,
    fold,
    fresh_conversation,
    is_expired,
    touched,
)
from chatkeep.errors import Expired, NotFound
from chatkeep.models import (
    ANYONE,
    Conversation,
    ConversationPage,
    ConversationPatch,
    ConversationQuery,
    ExpiredConversation,
    Message,
    Mode,
    Scope,
    Tenant,
    cursor_of,
)
from chatkeep.stores.sql.rows import (
    Columns,
    conversation_of,
    conversation_values,
    message_of,
    tenant_of,
    tenant_values,
)
from chatkeep.stores.sql.schema import conversation_tags, conversations, messages, tenants
from chatkeep.stores.sql.statements import (
    ADVISORY_NAMESPACE,
    CONVERSATION_KEY,
    GET_CONVERSATION,
    LOCK_CONVERSATION,
    MESSAGES_KEY,
    TAGS_KEY,
)

c, m, t = conversations.c, messages.c, conversation_tags.c

# -- tenants ----------------------------------------------------------------------------------------


def create_tenant(conn: sa.Connection, tenant: Tenant) -> None:
    try:
        with conn.begin_nested():
            conn.execute(sa.insert(tenants).values(**tenant_values(tenant)))
    except sa.exc.IntegrityError:
        raise errors.tenant_exists(tenant.id) from None


def find_tenant(conn: sa.Connection, column: str, value: str) -> Tenant | None:
    row = conn.execute(sa.select(tenants).where(tenants.c[column] == value)).first()
    return None if row is None else tenant_of(row._mapping)


def list_tenants(conn: sa.Connection) -> list[Tenant]:
    return [tenant_of(row._mapping) for row in conn.execute(sa.select(tenants).order_by(tenants.c.id))]


def update_tenant(conn: sa.Connection, tenant: Tenant) -> None:
    result = conn.execute(sa.update(tenants).where(tenants.c.id == tenant.id).values(**tenant_values(tenant)))
    if result.rowcount == 0:
        raise errors.tenant_not_found(tenant.id)


# -- conversations ----------------------------------------------------------------------------------


def load(
    conn: sa.Connection, tenant: str, cid: str, now: int, *, scope: Scope = ANYONE, for_update: bool = False
) -> Conversation:
    """The live conversation within `scope`, or NotFound / Expired."""
    row = conn.execute(
        LOCK_CONVERSATION if for_update else GET_CONVERSATION, {"tenant": tenant, "cid": cid}
    ).first()
    return checked(None if row is None else row._mapping, cid, now, scope)


def checked(row: Columns | None, cid: str, now: int, scope: Scope) -> Conversation:
    """The conversation a row holds, when it is live and within `scope`; NotFound / Expired otherwise."""
    if row is None or not scope.admits(row["user_id"], row["workspace"]):
        raise errors.conversation_not_found(cid)
    conversation = conversation_of(row)
    if is_expired(conversation, now):
        raise errors.conversation_expired(cid)
    return conversation


def retained(row: Columns | None, conversation: Conversation, message_id: str) -> Message:
    """The message a row holds, when the conversation still retains it; NotFound otherwise."""
    if row is None or row["seq"] < conversation.first_seq:
        raise errors.message_not_found(message_id)
    return message_of(row)


def live(now: int) -> sa.ColumnElement[bool]:
    return sa.or_(c.expires_at.is_(None), c.expires_at > now)


def count(conn: sa.Connection, tenant: str, user: str | None, now: int) -> int:
    stmt = sa.select(sa.func.count()).where(c.tenant_id == tenant, live(now))
    if user is not None:
        stmt = stmt.where(c.user_id == user)
    return int(conn.execute(stmt).scalar_one())


def create_conversation(
    conn: sa.Connection,
    conversation: Conversation,
    now: int,
    max_per_tenant: int | None,
    max_per_user: int | None,
) -> Conversation:
    limited = max_per_tenant is not None or max_per_user is not None
    if conn.dialect.name == "postgresql" and limited:
        # Serialise this tenant's creates so that the counts and the insert are one step.
        conn.execute(
            sa.text("SELECT pg_advisory_xact_lock(:ns, hashtext(:tenant))"),
            {"ns": ADVISORY_NAMESPACE, "tenant": conversation.tenant},
        )
    try:
        load(conn, conversation.tenant, conversation.id, now, for_update=True)
        raise errors.conversation_exists(conversation.id)
    except Expired:
        purge(conn, conversation.tenant, conversation.id)
    except NotFound:
        pass
    check_quota(
        count(conn, conversation.tenant, None, now) if max_per_tenant is not None else 0,
        count(conn, conversation.tenant, conversation.user, now) if max_per_user is not None else 0,
        max_per_tenant,
        max_per_user,
    )
    stored = fresh_conversation(conversation, now)
    try:
        with conn.begin_nested():
            conn.execute(sa.insert(conversations).values(**conversation_values(stored)))
    except sa.exc.IntegrityError:  # a concurrent create of the same id won
        raise errors.conversation_exists(conversation.id) from None
    write_tags(conn, stored)
    return stored


def list_conversations(conn: sa.Connection, query: ConversationQuery, now: int) -> ConversationPage:
    stmt = sa.select(conversations).where(c.tenant_id == query.tenant, live(now))
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
        stmt = stmt.where(
            sa.exists().where(t.tenant_id == c.tenant_id, t.conversation_id == c.id, t.tag == query.tag)
        )
    if query.text:
        stmt = stmt.where(c.title_folded.like(f"%{escape_like(fold(query.text))}%", escape="\\"))
    if query.after is not None:
        a = query.after
        stmt = stmt.where(
            sa.tuple_(c.pinned, c.last_activity_at, c.id)
            < sa.tuple_(sa.literal(a.pinned), sa.literal(a.last_activity_at), sa.literal(a.id))
        )
    stmt = stmt.order_by(c.pinned.desc(), c.last_activity_at.desc(), c.id.desc()).limit(query.limit + 1)
    items = [conversation_of(row._mapping) for row in conn.execute(stmt)]
    more = len(items) > query.limit
    items = items[: query.limit]
    return ConversationPage(items, cursor_of(items[-1]) if more and items else None)


def update_conversation(
    conn: sa.Connection,
    tenant: str,
    cid: str,
    patch: ConversationPatch,
    expected_version: int | None,
    now: int,
    scope: Scope,
) -> Conversation:
    current = load(conn, tenant, cid, now, scope=scope, for_update=True)
    updated = apply_patch(current, patch, now, expected_version)
    conn.execute(
        sa.update(conversations).where(CONVERSATION_KEY).values(**conversation_values(updated)),
        {"tenant": tenant, "cid": cid},
    )
    if patch.tags is not None:
        conn.execute(sa.delete(conversation_tags).where(TAGS_KEY), {"tenant": tenant, "cid": cid})
        write_tags(conn, updated)
    return updated


def touch_conversation(conn: sa.Connection, tenant: str, cid: str, now: int, scope: Scope) -> Conversation:
    current = load(conn, tenant, cid, now, scope=scope, for_update=True)
    after = touched(current, now)
    conn.execute(
        sa.update(conversations)
        .where(CONVERSATION_KEY)
        .values(last_activity_at=after.last_activity_at, expires_at=after.expires_at),
        {"tenant": tenant, "cid": cid},
    )
    return after


def sweep_expired(conn: sa.Connection, now: int, limit: int, keep_ms: int) -> list[ExpiredConversation]:
    # Forget tombstones kept long enough (their messages are already gone).
    conn.execute(sa.delete(conversations).where(c.swept_at.is_not(None), c.expires_at <= now - keep_ms))
    due = (
        sa.select(c.tenant_id, c.id, c.workspace, c.user_id, c.mode, c.expires_at)
        .where(c.expires_at <= now, c.swept_at.is_(None))
        .order_by(c.expires_at)
        .limit(limit)
    )
    swept = []
    for row in conn.execute(claimed(conn, due)).all():
        key = {"tenant": row.tenant_id, "cid": row.id}
        conn.execute(sa.delete(messages).where(MESSAGES_KEY), key)
        conn.execute(sa.delete(conversation_tags).where(TAGS_KEY), key)
        conn.execute(sa.update(conversations).where(CONVERSATION_KEY).values(swept_at=now), key)
        swept.append(
            ExpiredConversation(
                row.tenant_id, row.id, row.workspace, row.user_id, Mode(row.mode), row.expires_at
            )
        )
    return swept


def claimed(conn: sa.Connection, due: sa.Select[Any]) -> sa.Select[Any]:
    """`due` as a sweeper reads it: concurrent sweepers take disjoint rows (PostgreSQL; SQLite has one
    writer at a time)."""
    if conn.dialect.name == "postgresql":
        return due.with_for_update(skip_locked=True)
    return due


def delete_conversation(conn: sa.Connection, tenant: str, cid: str, now: int, scope: Scope) -> Conversation:
    current = load(conn, tenant, cid, now, scope=scope, for_update=True)
    purge(conn, tenant, cid)
    return current


def purge(conn: sa.Connection, tenant: str, cid: str) -> None:
    key = {"tenant": tenant, "cid": cid}
    conn.execute(sa.delete(messages).where(MESSAGES_KEY), key)
    conn.execute(sa.delete(conversation_tags).where(TAGS_KEY), key)
    conn.execute(sa.delete(conversations).where(CONVERSATION_KEY), key)


def write_tags(conn: sa.Connection, conversation: Conversation) -> None:
    if conversation.tags:
        conn.execute(
            sa.insert(conversation_tags),
            [
                {"tenant_id": conversation.tenant, "conversation_id": conversation.id, "tag": tag}
                for tag in conversation.tags
            ],
        )


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
