"""Full-text search over one SQLAlchemy connection: SQLite through the FTS5 tables, PostgreSQL
through the GIN indexes on `to_tsvector` (both made by migration 0005).

The index finds the candidate texts (every one holding all the terms as words, and possibly a few
more); `chatkeep.domain.search` then decides each hit, its score and its snippet from the stored
text, so SQL answers exactly as the other stores. At most `MAX_CANDIDATES` messages (the most
recent) and as many titles are read per call; past that the page says `partial`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from chatkeep.domain.search import hit, search_page
from chatkeep.models import MessageStatus, Role, SearchHit, SearchPage, SearchQuery
from chatkeep.stores.sql.ops import live
from chatkeep.stores.sql.schema import conversations, messages

MAX_CANDIDATES = 1_000
# The indexed expression of migration 0005: the same text, so PostgreSQL uses the GIN index.
POSTGRES_VECTOR = (
    r"to_tsvector('simple'::regconfig, regexp_replace(left({column}, 65536), '(\W|_)+', ' ', 'g'))"
)
POSTGRES_MATCH = POSTGRES_VECTOR + " @@ plainto_tsquery('simple'::regconfig, :terms)"
SQLITE_MATCH = "{table}.rowid IN (SELECT rowid FROM {table}_fts WHERE {table}_fts MATCH :terms)"

# What migration 0005 adds beyond the tables of `schema.py` (SQLAlchemy cannot declare them): the
# FTS5 tables with their shadow tables on SQLite, the GIN indexes on PostgreSQL.
SEARCH_OBJECTS = {
    "sqlite": frozenset(
        f"{fts}{suffix}"
        for fts in ("messages_fts", "conversations_fts")
        for suffix in ("", "_data", "_idx", "_docsize", "_config")
    ),
    "postgresql": frozenset({"ix_messages_search", "ix_conversations_search"}),
}

c, m = conversations.c, messages.c


def full_text_search(conn: sa.Connection, query: SearchQuery, now: int) -> SearchPage:
    scope = _scope(query, now)
    titles = sa.select(c.id, c.workspace, c.title).where(
        *scope, _matches(conn, query.terms, "conversations", "title")
    )
    found = (
        sa.select(m.conversation_id, m.id, m.seq, m.role, m.content, c.workspace, c.title)
        .select_from(
            messages.join(conversations, sa.and_(c.tenant_id == m.tenant_id, c.id == m.conversation_id))
        )
        .where(
            *scope,
            m.status != MessageStatus.TRIMMED.value,
            _matches(conn, query.terms, "messages", "content"),
        )
    )
    title_rows = conn.execute(titles.order_by(c.last_activity_at.desc()).limit(MAX_CANDIDATES + 1)).all()
    message_rows = conn.execute(found.order_by(m.created_at.desc()).limit(MAX_CANDIDATES + 1)).all()
    hits: list[SearchHit | None] = [
        hit(query.terms, row.title, conversation_id=row.id, workspace=row.workspace, title=row.title)
        for row in title_rows[:MAX_CANDIDATES]
    ]
    hits += [
        hit(
            query.terms,
            row.content,
            conversation_id=row.conversation_id,
            workspace=row.workspace,
            title=row.title,
            message_id=row.id,
            seq=row.seq,
            role=Role(row.role),
        )
        for row in message_rows[:MAX_CANDIDATES]
    ]
    partial = len(title_rows) > MAX_CANDIDATES or len(message_rows) > MAX_CANDIDATES
    return search_page(query, [h for h in hits if h is not None], partial=partial)


def _scope(query: SearchQuery, now: int) -> list[sa.ColumnElement[bool]]:
    """The conversations `list_conversations` would show for the same fields."""
    where = [c.tenant_id == query.tenant, live(now), c.swept_at.is_(None)]
    if query.user is not None:
        where.append(c.user_id == query.user)
    if query.allowed_workspaces is not None:
        where.append(c.workspace.in_(sorted(query.allowed_workspaces)))
    if query.workspace is not None:
        where.append(c.workspace == query.workspace)
    return where


def _matches(conn: sa.Connection, terms: Sequence[str], table: str, column: str) -> sa.TextClause:
    """The index condition: texts that hold every term as a word. Terms are letters and digits
    only; each is quoted for FTS5 all the same, so no term is ever read as query syntax."""
    if conn.dialect.name == "postgresql":
        text = POSTGRES_MATCH.format(column=f"{table}.{column}")
        return sa.text(text).bindparams(terms=" ".join(terms))
    phrases = " ".join('"' + t.replace('"', '""') + '"' for t in terms)
    return sa.text(SQLITE_MATCH.format(table=table)).bindparams(terms=phrases)
