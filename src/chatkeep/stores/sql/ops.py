"""Every SQL operation of the store, as a plain function over a SQLAlchemy `Connection`.

SQLite and PostgreSQL run these same functions: SqlStore calls them in a worker thread on SQLite and
through `AsyncConnection.run_sync` on PostgreSQL. Each function is one transaction's worth of work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from chatkeep.errors import Conflict, Expired, NotFound, QuotaExceeded, VersionMismatch
from chatkeep.models import (
    ANYONE,
    AppendOutcome,
    Conversation,
    ConversationPage,
    ConversationPatch,
    ConversationQuery,
    ExpiredConversation,
    LimitPolicy,
    Message,
    MessagePage,
    MessageStatus,
    Mode,
    NewMessage,
    Role,
    Scope,
    Tenant,
    TenantSettings,
    Usage,
    cursor_of,
)
from chatkeep.stores.base import (
    AppendPlan,
    Extension,
    after_extend,
    after_finish,
    apply_patch,
    check_appendable,
    check_quota,
    finished,
    fold,
    fresh_conversation,
    is_expired,
    plan_append,
    plan_extend,
    touched,
)
from chatkeep.stores.sql.schema import conversation_tags, conversations, messages, tenants

# First key of the PostgreSQL advisory locks chatkeep takes ("ck").
ADVISORY_NAMESPACE = 0x636B

c, m, t = conversations.c, messages.c, conversation_tags.c

# Statements built once: SQLAlchemy then reuses their compiled form on every call.
_CONVERSATION_KEY = sa.and_(c.tenant_id == sa.bindparam("tenant"), c.id == sa.bindparam("cid"))
_MESSAGES_KEY = sa.and_(m.tenant_id == sa.bindparam("tenant"), m.conversation_id == sa.bindparam("cid"))
_TAGS_KEY = sa.and_(t.tenant_id == sa.bindparam("tenant"), t.conversation_id == sa.bindparam("cid"))
GET_CONVERSATION = sa.select(conversations).where(_CONVERSATION_KEY)
LOCK_CONVERSATION = GET_CONVERSATION.with_for_update()
FIND_MESSAGES_BY_ID = sa.select(messages).where(_MESSAGES_KEY, m.id.in_(sa.bindparam("ids", expanding=True)))
INSERT_MESSAGE = sa.insert(messages)
DELETE_MESSAGES_BY_ID = sa.delete(messages).where(
    _MESSAGES_KEY, m.id.in_(sa.bindparam("ids", expanding=True))
)
UPDATE_AFTER_APPEND = (
    sa.update(conversations)
    .where(_CONVERSATION_KEY)
    .values(
        last_seq=sa.bindparam("last_seq"),
        message_count=sa.bindparam("message_count"),
        last_activity_at=sa.bindparam("last_activity_at"),
        preview=sa.bindparam("preview"),
        input_tokens=sa.bindparam("input_tokens"),
        output_tokens=sa.bindparam("output_tokens"),
        expires_at=sa.bindparam("expires_at"),
    )
)
TRIM_MESSAGES = (
    sa.update(messages)
    .where(_MESSAGES_KEY, m.seq >= sa.bindparam("low"), m.seq < sa.bindparam("high"))
    .values(content="", parts=sa.null(), metadata=sa.null(), status=MessageStatus.TRIMMED.value)
)
_PAGE = sa.select(messages).where(
    _MESSAGES_KEY, m.seq >= sa.bindparam("first_seq"), m.status != MessageStatus.TRIMMED.value
)
LATEST_PAGE = _PAGE.order_by(m.seq.desc()).limit(sa.bindparam("n"))
BEFORE_PAGE = _PAGE.where(m.seq < sa.bindparam("before")).order_by(m.seq.desc()).limit(sa.bindparam("n"))
AFTER_PAGE = _PAGE.where(m.seq > sa.bindparam("after")).order_by(m.seq.asc()).limit(sa.bindparam("n"))
RANGE_PAGE = (
    _PAGE.where(m.seq > sa.bindparam("after"), m.seq < sa.bindparam("before"))
    .order_by(m.seq.asc())
    .limit(sa.bindparam("n"))
)


# -- tenants ----------------------------------------------------------------------------------------


def create_tenant(conn: sa.Connection, tenant: Tenant) -> None:
    try:
        with conn.begin_nested():
            conn.execute(sa.insert(tenants).values(**_tenant_values(tenant)))
    except sa.exc.IntegrityError:
        raise Conflict(f"tenant {tenant.id!r} exists", code="tenant_exists") from None


def find_tenant(conn: sa.Connection, column: str, value: str) -> Tenant | None:
    row = conn.execute(sa.select(tenants).where(tenants.c[column] == value)).first()
    return None if row is None else _tenant(row)


def list_tenants(conn: sa.Connection) -> list[Tenant]:
    return [_tenant(row) for row in conn.execute(sa.select(tenants).order_by(tenants.c.id))]


def update_tenant(conn: sa.Connection, tenant: Tenant) -> None:
    result = conn.execute(
        sa.update(tenants).where(tenants.c.id == tenant.id).values(**_tenant_values(tenant))
    )
    if result.rowcount == 0:
        raise NotFound(f"tenant {tenant.id!r} not found")


# -- conversations ----------------------------------------------------------------------------------


def load(
    conn: sa.Connection, tenant: str, cid: str, now: int, *, scope: Scope = ANYONE, for_update: bool = False
) -> Conversation:
    """The live conversation within `scope`, or NotFound / Expired."""
    row = conn.execute(
        LOCK_CONVERSATION if for_update else GET_CONVERSATION, {"tenant": tenant, "cid": cid}
    ).first()
    if row is None or not scope.admits(row.user_id, row.workspace):
        raise NotFound(f"conversation {cid!r} not found")
    conversation = _conversation(row)
    if is_expired(conversation, now):
        raise Expired(f"conversation {cid!r} expired")
    return conversation


def _live(now: int) -> sa.ColumnElement[bool]:
    return sa.or_(c.expires_at.is_(None), c.expires_at > now)


def count(conn: sa.Connection, tenant: str, user: str | None, now: int) -> int:
    stmt = sa.select(sa.func.count()).where(c.tenant_id == tenant, _live(now))
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
        raise Conflict(f"conversation {conversation.id!r} exists", code="conversation_exists")
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
            conn.execute(sa.insert(conversations).values(**_conversation_values(stored)))
    except sa.exc.IntegrityError:  # a concurrent create of the same id won
        raise Conflict(f"conversation {conversation.id!r} exists", code="conversation_exists") from None
    _write_tags(conn, stored)
    return stored


def list_conversations(conn: sa.Connection, query: ConversationQuery, now: int) -> ConversationPage:
    stmt = sa.select(conversations).where(c.tenant_id == query.tenant, _live(now))
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
        stmt = stmt.where(c.title_folded.like(f"%{_escape_like(fold(query.text))}%", escape="\\"))
    if query.after is not None:
        a = query.after
        stmt = stmt.where(
            sa.tuple_(c.pinned, c.last_activity_at, c.id)
            < sa.tuple_(sa.literal(a.pinned), sa.literal(a.last_activity_at), sa.literal(a.id))
        )
    stmt = stmt.order_by(c.pinned.desc(), c.last_activity_at.desc(), c.id.desc()).limit(query.limit + 1)
    items = [_conversation(row) for row in conn.execute(stmt)]
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
    if expected_version is not None and expected_version != current.version:
        raise VersionMismatch(
            f"conversation {cid!r} is at version {current.version}", current_version=current.version
        )
    updated = apply_patch(current, patch, now)
    conn.execute(
        sa.update(conversations).where(_CONVERSATION_KEY).values(**_conversation_values(updated)),
        {"tenant": tenant, "cid": cid},
    )
    if patch.tags is not None:
        conn.execute(sa.delete(conversation_tags).where(_TAGS_KEY), {"tenant": tenant, "cid": cid})
        _write_tags(conn, updated)
    return updated


def touch_conversation(conn: sa.Connection, tenant: str, cid: str, now: int, scope: Scope) -> Conversation:
    current = load(conn, tenant, cid, now, scope=scope, for_update=True)
    after = touched(current, now)
    conn.execute(
        sa.update(conversations)
        .where(_CONVERSATION_KEY)
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
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)  # concurrent sweepers take disjoint rows
    swept = []
    for row in conn.execute(due).all():
        key = {"tenant": row.tenant_id, "cid": row.id}
        conn.execute(sa.delete(messages).where(_MESSAGES_KEY), key)
        conn.execute(sa.delete(conversation_tags).where(_TAGS_KEY), key)
        conn.execute(sa.update(conversations).where(_CONVERSATION_KEY).values(swept_at=now), key)
        swept.append(
            ExpiredConversation(
                row.tenant_id, row.id, row.workspace, row.user_id, Mode(row.mode), row.expires_at
            )
        )
    return swept


def delete_conversation(conn: sa.Connection, tenant: str, cid: str, now: int, scope: Scope) -> Conversation:
    current = load(conn, tenant, cid, now, scope=scope, for_update=True)
    purge(conn, tenant, cid)
    return current


def purge(conn: sa.Connection, tenant: str, cid: str) -> None:
    key = {"tenant": tenant, "cid": cid}
    conn.execute(sa.delete(messages).where(_MESSAGES_KEY), key)
    conn.execute(sa.delete(conversation_tags).where(_TAGS_KEY), key)
    conn.execute(sa.delete(conversations).where(_CONVERSATION_KEY), key)


def _write_tags(conn: sa.Connection, conversation: Conversation) -> None:
    if conversation.tags:
        conn.execute(
            sa.insert(conversation_tags),
            [
                {"tenant_id": conversation.tenant, "conversation_id": conversation.id, "tag": tag}
                for tag in conversation.tags
            ],
        )


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


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
        existing = {row.id: _message(row) for row in rows}
        plan = plan_append(current, existing, new, now, max_messages=max_messages, policy=policy)
        if plan.inserts:
            conn.execute(INSERT_MESSAGE, [_message_values(tenant, message) for message in plan.inserts])
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
    values = [_message_values(tenant, message) for message in plan.inserts]
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


GET_MESSAGE = sa.select(messages).where(_MESSAGES_KEY, m.id == sa.bindparam("mid")).with_for_update()


def _load_message(conn: sa.Connection, conversation: Conversation, message_id: str) -> Message:
    row = conn.execute(
        GET_MESSAGE, {"tenant": conversation.tenant, "cid": conversation.id, "mid": message_id}
    ).first()
    if row is None or row.seq < conversation.first_seq:
        raise NotFound(f"message {message_id!r} not found", code="message_not_found")
    return _message(row)


def _save_message(conn: sa.Connection, tenant: str, message: Message, now: int) -> None:
    conn.execute(
        sa.update(messages)
        .where(_MESSAGES_KEY, m.seq == message.seq)
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
        .where(_CONVERSATION_KEY)
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
    conn: sa.Connection, conversation: Conversation, before: int | None, after: int | None, limit: int
) -> MessagePage:
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
    found = [_message(row) for row in conn.execute(stmt, params)]
    page = found[:limit]
    if after is None:
        page.reverse()
    return MessagePage(page, has_more=len(found) > limit)


# -- rows <-> models --------------------------------------------------------------------------------


def _tenant(row: sa.Row[Any]) -> Tenant:
    return Tenant(
        id=row.id,
        name=row.name,
        api_key_hash=row.api_key_hash,
        token_secret=row.token_secret,
        created_at=row.created_at,
        settings=TenantSettings.from_json(row.settings),
        previous_token_secret=row.previous_token_secret,
        previous_secret_expires_at=row.previous_secret_expires_at,
    )


def _tenant_values(tenant: Tenant) -> dict[str, Any]:
    return {
        "id": tenant.id,
        "name": tenant.name,
        "api_key_hash": tenant.api_key_hash,
        "token_secret": tenant.token_secret,
        "settings": tenant.settings.to_json(),
        "created_at": tenant.created_at,
        "previous_token_secret": tenant.previous_token_secret,
        "previous_secret_expires_at": tenant.previous_secret_expires_at,
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


def _conversation_values(conversation: Conversation) -> dict[str, Any]:
    x = conversation
    return {
        "tenant_id": x.tenant,
        "id": x.id,
        "workspace": x.workspace,
        "user_id": x.user,
        "mode": x.mode.value,
        "title": x.title,
        "title_folded": fold(x.title),
        "created_at": x.created_at,
        "last_activity_at": x.last_activity_at,
        "starred": x.starred,
        "pinned": x.pinned,
        "archived": x.archived,
        "tags": list(x.tags),
        "message_count": x.message_count,
        "last_seq": x.last_seq,
        "preview": x.preview,
        "input_tokens": x.usage.input_tokens,
        "output_tokens": x.usage.output_tokens,
        "version": x.version,
        "ttl_ms": x.ttl_ms,
        "expires_at": x.expires_at,
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


def _message_values(tenant: str, message: Message) -> dict[str, Any]:
    x = message
    return {
        "tenant_id": tenant,
        "conversation_id": x.conversation_id,
        "seq": x.seq,
        "id": x.id,
        "role": x.role.value,
        "content": x.content,
        "parts": x.parts,
        "metadata": x.metadata,
        "input_tokens": x.usage.input_tokens,
        "output_tokens": x.usage.output_tokens,
        "created_at": x.created_at,
        "status": x.status.value,
        "updated_at": x.created_at,
    }
