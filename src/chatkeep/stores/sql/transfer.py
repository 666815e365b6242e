"""Importing a conversation as given, in one transaction (see `Store.import_conversation`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlalchemy as sa

from chatkeep.domain import check_import, check_reimport, errors
from chatkeep.errors import Expired, NotFound
from chatkeep.models import Conversation, Message
from chatkeep.stores.sql.ops import load, purge, write_tags
from chatkeep.stores.sql.rows import conversation_values, message_of, message_values
from chatkeep.stores.sql.schema import conversations
from chatkeep.stores.sql.statements import AFTER_PAGE, INSERT_MESSAGE

# Messages inserted per statement: bounded parameter lists on either dialect.
CHUNK = 500


def importer(
    conversation: Conversation, messages: Sequence[Message], now: int
) -> Callable[[sa.Connection], bool]:
    """The import as an operation for `SqlStore._run` (a write: one transaction)."""
    return lambda conn: import_conversation(conn, conversation, messages, now)


def import_conversation(
    conn: sa.Connection, conversation: Conversation, messages: Sequence[Message], now: int
) -> bool:
    check_import(conversation, messages, now)
    existing = _live(conn, conversation, now)
    if existing is not None:
        return _compare(conn, existing, conversation, messages)
    try:
        with conn.begin_nested():
            conn.execute(sa.insert(conversations).values(**conversation_values(conversation)))
    except sa.exc.IntegrityError:  # a concurrent import or create of this id won
        existing = _live(conn, conversation, now)
        if existing is None:
            raise errors.conversation_exists(conversation.id) from None
        return _compare(conn, existing, conversation, messages)
    write_tags(conn, conversation)
    tenant = conversation.tenant
    for start in range(0, len(messages), CHUNK):
        conn.execute(INSERT_MESSAGE, [message_values(tenant, m) for m in messages[start : start + CHUNK]])
    return True


def _live(conn: sa.Connection, conversation: Conversation, now: int) -> Conversation | None:
    """The live conversation with this id (locked), or None; an expired one is purged."""
    try:
        return load(conn, conversation.tenant, conversation.id, now, for_update=True)
    except Expired:
        purge(conn, conversation.tenant, conversation.id)
    except NotFound:
        pass
    return None


def _compare(
    conn: sa.Connection, stored: Conversation, conversation: Conversation, messages: Sequence[Message]
) -> bool:
    params = {
        "tenant": stored.tenant,
        "cid": stored.id,
        "first_seq": stored.first_seq,
        "after": stored.first_seq - 1,
        "n": stored.message_count,
    }
    held = [message_of(row._mapping) for row in conn.execute(AFTER_PAGE, params)]
    return check_reimport(stored, held, conversation, messages)
