"""The SQL statements the operations run, compiled once: keys, locks, inserts and the page reads."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from chatkeep.models import (
    MessageStatus,
)
from chatkeep.stores.sql.schema import conversation_tags, conversations, messages

# First key of the PostgreSQL advisory locks chatkeep takes ("ck").
ADVISORY_NAMESPACE = 0x636B

c, m, t = conversations.c, messages.c, conversation_tags.c

# Statements built once: SQLAlchemy then reuses their compiled form on every call.
CONVERSATION_KEY = sa.and_(c.tenant_id == sa.bindparam("tenant"), c.id == sa.bindparam("cid"))
MESSAGES_KEY = sa.and_(m.tenant_id == sa.bindparam("tenant"), m.conversation_id == sa.bindparam("cid"))
TAGS_KEY = sa.and_(t.tenant_id == sa.bindparam("tenant"), t.conversation_id == sa.bindparam("cid"))
GET_CONVERSATION = sa.select(conversations).where(CONVERSATION_KEY)
LOCK_CONVERSATION = GET_CONVERSATION.with_for_update()
FIND_MESSAGES_BY_ID = sa.select(messages).where(MESSAGES_KEY, m.id.in_(sa.bindparam("ids", expanding=True)))
INSERT_MESSAGE = sa.insert(messages)
# Appends insert assuming every id is new: a message whose id the conversation holds is not inserted.
INSERT_NEW_MESSAGE = {
    dialect: insert(messages).on_conflict_do_nothing(index_elements=["tenant_id", "conversation_id", "id"])
    for dialect, insert in (("sqlite", sqlite_insert), ("postgresql", postgresql_insert))
}
DELETE_MESSAGES_BY_ID = sa.delete(messages).where(MESSAGES_KEY, m.id.in_(sa.bindparam("ids", expanding=True)))
# What an append or a stream's growth changes in its conversation's row, in both paths.
_ACTIVITY: dict[str, sa.BindParameter[Any]] = {
    name: sa.bindparam(name)
    for name in ("last_activity_at", "preview", "input_tokens", "output_tokens", "expires_at")
}
_AFTER_APPEND = {
    "last_seq": sa.bindparam("last_seq"),
    "message_count": sa.bindparam("message_count"),
    **_ACTIVITY,
}
UPDATE_AFTER_APPEND = sa.update(conversations).where(CONVERSATION_KEY).values(**_AFTER_APPEND)
TRIM_MESSAGES = (
    sa.update(messages)
    .where(MESSAGES_KEY, m.seq >= sa.bindparam("low"), m.seq < sa.bindparam("high"))
    .values(content="", parts=sa.null(), metadata=sa.null(), status=MessageStatus.TRIMMED.value)
)
_PAGE = sa.select(messages).where(
    MESSAGES_KEY, m.seq >= sa.bindparam("first_seq"), m.status != MessageStatus.TRIMMED.value
)
LATEST_PAGE = _PAGE.order_by(m.seq.desc()).limit(sa.bindparam("n"))
BEFORE_PAGE = _PAGE.where(m.seq < sa.bindparam("before")).order_by(m.seq.desc()).limit(sa.bindparam("n"))
AFTER_PAGE = _PAGE.where(m.seq > sa.bindparam("after")).order_by(m.seq.asc()).limit(sa.bindparam("n"))
RANGE_PAGE = (
    _PAGE.where(m.seq > sa.bindparam("after"), m.seq < sa.bindparam("before"))
    .order_by(m.seq.asc())
    .limit(sa.bindparam("n"))
)
GET_MESSAGE = sa.select(messages).where(MESSAGES_KEY, m.id == sa.bindparam("mid")).with_for_update()
# A streaming message's content, status and usage (a delta, a finish), and its conversation's activity.
# (Its usage goes as `message_*`: the conditional statement below sets the conversation's too.)
_SAVED_MESSAGE: dict[str, sa.BindParameter[Any]] = {
    "content": sa.bindparam("content"),
    "status": sa.bindparam("status"),
    "input_tokens": sa.bindparam("message_input_tokens"),
    "output_tokens": sa.bindparam("message_output_tokens"),
    "updated_at": sa.bindparam("now"),
}
SAVE_MESSAGE = (
    sa.update(messages).where(MESSAGES_KEY, m.seq == sa.bindparam("message_seq")).values(**_SAVED_MESSAGE)
)
SAVE_ACTIVITY = sa.update(conversations).where(CONVERSATION_KEY).values(**_ACTIVITY)

# -- PostgreSQL's hot path (`postgres.py` runs these, compiled once, on asyncpg) -----------------------
# A row's xmin names the transaction that wrote its current version: a write conditional on it
# applies only if nothing changed the row since it was read. Every write that changes a message
# also updates its conversation row, so the conversation's xmin stands for its messages too.
ROW_VERSION: sa.ColumnClause[int] = sa.literal_column("conversations.xmin")
READ_CONVERSATION = sa.select(conversations, ROW_VERSION.label("row_version")).where(CONVERSATION_KEY)
MESSAGE_FIELDS = tuple(
    "seq id role content parts metadata input_tokens output_tokens created_at status".split()
)
READ_CONVERSATION_AND_MESSAGE = (
    sa.select(
        conversations,
        ROW_VERSION.label("row_version"),
        *(m[name].label(f"message_{name}") for name in MESSAGE_FIELDS),
    )
    .select_from(
        conversations.outerjoin(
            messages,
            sa.and_(m.tenant_id == c.tenant_id, m.conversation_id == c.id, m.id == sa.bindparam("mid")),
        )
    )
    .where(CONVERSATION_KEY)
)
JSON_FIELDS = {"parts", "metadata"}


def _new_type(name: str) -> sa.types.TypeEngine[Any]:
    # JSON goes as text (an array of JSON lists would read as a deeper array) and is cast back.
    return sa.Text() if name in JSON_FIELDS else m[name].type


# One message, its fields as they are (no arrays to build and take apart).
_ONE = sa.select(
    *(sa.bindparam(f"new_{name}", type_=_new_type(name)).label(name) for name in MESSAGE_FIELDS)
).subquery("one")


def _if_unchanged(values: dict[str, sa.BindParameter[Any]], name: str) -> sa.CTE:
    """The conversation row updated with `values` only if it is the version it was read at."""
    return (
        sa.update(conversations)
        .where(CONVERSATION_KEY, ROW_VERSION == sa.bindparam("row_version"))
        .values(**values)
        .returning(c.tenant_id, c.id)
        .cte(name)
    )


# An append alone, of one message to one conversation, updates its row with its new counters.
_COUNTED = _if_unchanged(_AFTER_APPEND, "counted")


class _Xid(sa.types.UserDefinedType[int]):
    """PostgreSQL's transaction id, the type of a row's xmin."""

    cache_ok = True

    def get_col_spec(self, **_: Any) -> str:
        return "XID"


def _unnest(prefix: str, columns: dict[str, sa.types.TypeEngine[Any]], name: str) -> sa.TableValuedAlias:
    """Rows from one array parameter a column (`{prefix}{column}`), one element a row."""
    arrays = (sa.bindparam(f"{prefix}{column}", type_=ARRAY(kind)) for column, kind in columns.items())
    return sa.func.unnest(*arrays).table_valued(*columns).render_derived(name=name)


# Appends to several conversations (or many messages to one) in one statement: one row a
# conversation, with its place in the group, its key, the row version its append was planned on and
# its new counters, and one row a message, with its conversation's place. A conversation whose row is
# no longer that version is not updated, and so none of its messages is inserted; the others are
# written all the same. Returns, for each message written, its conversation and the version its row
# has now.
GROUP_FIELDS = ("tenant", "cid", "row_version", *_AFTER_APPEND)
_AFTER = _unnest(
    "group_",
    {
        "n": sa.Integer(),
        "tenant": c.tenant_id.type,
        "cid": c.id.type,
        "row_version": _Xid(),
        **{name: c[name].type for name in _AFTER_APPEND},
    },
    "after",
)
_GROUP_COUNTED = (
    sa.update(conversations)
    .where(c.tenant_id == _AFTER.c.tenant, c.id == _AFTER.c.cid, ROW_VERSION == _AFTER.c.row_version)
    .values({name: _AFTER.c[name] for name in _AFTER_APPEND})
    .returning(c.tenant_id, c.id, _AFTER.c.n)
    .cte("counted")
)
_GROUP_NEW = _unnest(
    "new_", {"n": sa.Integer(), **{name: _new_type(name) for name in MESSAGE_FIELDS}}, "added"
)


_NOW_VERSION: sa.Label[Any] = sa.literal_column("pg_current_xact_id()::xid").label("row_version")


def _append_counted(counted: sa.CTE, new: sa.FromClause, on: sa.ColumnElement[bool]) -> sa.Select[Any]:
    """Insert the messages of `new` whose conversation `counted` updated. Returns a row for each
    conversation written (all its messages are, or the statement fails), with the version its row
    has now: the xmin of the row this statement updated, which is this statement's transaction."""
    values = [sa.cast(new.c[n], JSONB) if n in JSON_FIELDS else new.c[n] for n in MESSAGE_FIELDS]
    added = (
        sa.insert(messages)
        .from_select(
            ["tenant_id", "conversation_id", *MESSAGE_FIELDS, "updated_at"],
            sa.select(counted.c.tenant_id, counted.c.id, *values, new.c.created_at)
            .select_from(counted)
            .join(new, on),
        )
        .cte("inserted")
    )
    written = [counted.c.n] if "n" in counted.c else []
    return sa.select(*written, _NOW_VERSION).select_from(counted).add_cte(added)


APPEND_ONE_IF_UNCHANGED = _append_counted(_COUNTED, _ONE, sa.true())
APPEND_GROUP_IF_UNCHANGED = _append_counted(_GROUP_COUNTED, _GROUP_NEW, _GROUP_NEW.c.n == _GROUP_COUNTED.c.n)
_ACTIVE = _if_unchanged(_ACTIVITY, "active")
# A streaming message and its conversation's activity, written only if the row is as it was read.
SAVE_MESSAGE_IF_UNCHANGED = (
    sa.update(messages)
    .where(
        m.tenant_id == _ACTIVE.c.tenant_id,
        m.conversation_id == _ACTIVE.c.id,
        m.seq == sa.bindparam("message_seq"),
    )
    .values(**_SAVED_MESSAGE)
    .returning(m.seq)
)
