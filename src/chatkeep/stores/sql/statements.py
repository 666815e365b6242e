"""The SQL statements the operations run, compiled once: keys, locks, inserts and the page reads."""

from __future__ import annotations

import sqlalchemy as sa

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
DELETE_MESSAGES_BY_ID = sa.delete(messages).where(MESSAGES_KEY, m.id.in_(sa.bindparam("ids", expanding=True)))
UPDATE_AFTER_APPEND = (
    sa.update(conversations)
    .where(CONVERSATION_KEY)
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
