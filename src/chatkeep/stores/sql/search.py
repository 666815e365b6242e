"""Full-text search over one SQLAlchemy connection: SQLite through the FTS5 tables, PostgreSQL
through GIN-indexed `tsvector` columns (both made by migration 0005; a streaming message is indexed
once it finishes, 0006 and 0007).

The index finds the candidate texts (every one holding all the terms as words, and possibly a few
more); `chatkeep.domain.search` then decides each hit, its score and its snippet from the stored
text, so SQL answers exactly as the other stores. At most `MAX_CANDIDATES` messages (the most
recently stored) and as many titles are read per call; past that the page says `partial`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from chatkeep.domain.search import Candidate, search_page
from chatkeep.models import MessageStatus, Role, SearchPage, SearchQuery
from chatkeep.stores.sql.ops import live
from chatkeep.stores.sql.schema import conversations, messages

MAX_CANDIDATES = 1_000
ROLES = {role.value: role for role in Role}  # a dict is much faster than Role(value)
# The generated, GIN-indexed `search_vector` column of migrations 0005 and 0006.
POSTGRES_MATCH = "{table}.search_vector @@ plainto_tsquery('simple'::regconfig, :terms)"
# A streaming message has no stored vector yet (0006): its vector is computed as it is read, by
# the expression the column holds once it finishes. Streaming messages are few, and the partial
# index ix_messages_streaming finds them.
POSTGRES_STREAMING_MATCH = (
    "messages.status = 'streaming' AND to_tsvector('simple'::regconfig, "
    r"regexp_replace(left(messages.content, 65536), '(\W|_)+', ' ', 'g'))"
    " @@ plainto_tsquery('simple'::regconfig, :terms)"
)

# What migration 0005 adds beyond the tables of `schema.py` (SQLAlchemy cannot declare them): the
# FTS5 tables with their shadow tables on SQLite; on PostgreSQL the vector columns, their GIN indexes
# and the index that walks a tenant's messages newest first.
SEARCH_OBJECTS = {
    "sqlite": frozenset(
        f"{fts}{suffix}"
        for fts in ("messages_fts", "conversations_fts")
        for suffix in ("", "_data", "_idx", "_docsize", "_config")
    ),
    "postgresql": frozenset(
        {
            "ix_messages_search",
            "ix_conversations_search",
            "messages.search_vector",
            "conversations.search_vector",
            "ix_messages_recent",
        }
    ),
}

c, m = conversations.c, messages.c
ON_CONVERSATION = sa.and_(c.tenant_id == m.tenant_id, c.id == m.conversation_id)


def full_text_search(conn: sa.Connection, query: SearchQuery, now: int) -> SearchPage:
    scope = scope_of(query, now)
    titles = sa.select(c.id, c.workspace, c.title).where(*scope)
    found = sa.select(m.conversation_id, m.id, m.seq, m.role, m.content, c.workspace, c.title).where(
        *scope, m.status != MessageStatus.TRIMMED.value
    )
    if conn.dialect.name == "postgresql":
        # Inline, not a bound parameter: a prepared statement gets a generic plan after five runs,
        # which guesses how common every word is; the planner must see the words themselves.
        terms = sa.bindparam("terms", " ".join(query.terms), type_=sa.String, literal_execute=True)
        titles = titles.where(sa.text(POSTGRES_MATCH.format(table="conversations")).bindparams(terms))
        titles = titles.order_by(c.last_activity_at.desc(), c.id)
        found = found.select_from(messages.join(conversations, ON_CONVERSATION))
        found = found.where(
            sa.or_(
                sa.text(POSTGRES_MATCH.format(table="messages")).bindparams(terms),
                sa.text(POSTGRES_STREAMING_MATCH).bindparams(terms),
            )
        )
        selects = [found.order_by(m.created_at.desc(), m.conversation_id, m.seq)]
    else:
        # The FTS table drives the join and yields rowids newest first, so the limit stops it early.
        title_fts, message_fts = _fts("conversations_fts"), _fts("messages_fts")
        titles = titles.select_from(
            title_fts.join(conversations, sa.literal_column("conversations.rowid") == title_fts.c.rowid)
        )
        titles = titles.where(_fts_match("conversations_fts", query.terms)).order_by(title_fts.c.rowid.desc())
        found = found.select_from(
            message_fts.join(messages, sa.literal_column("messages.rowid") == message_fts.c.rowid).join(
                conversations, ON_CONVERSATION
            )
        )
        found = found.where(_fts_match("messages_fts", query.terms)).order_by(message_fts.c.rowid.desc())
        selects = [found, sqlite_streaming(scope)]
    title_rows = conn.execute(titles.limit(MAX_CANDIDATES + 1)).all()
    candidates = [Candidate(r.title, r.id, r.workspace, r.title) for r in title_rows[:MAX_CANDIDATES]]
    partial = len(title_rows) > MAX_CANDIDATES
    for select in selects:
        message_rows = conn.execute(select.limit(MAX_CANDIDATES + 1)).all()
        candidates += [
            Candidate(r.content, r.conversation_id, r.workspace, r.title, r.id, r.seq, ROLES[r.role])
            for r in message_rows[:MAX_CANDIDATES]
        ]
        partial = partial or len(message_rows) > MAX_CANDIDATES
    return search_page(query, candidates, partial=partial)


def sqlite_streaming(scope: list[sa.ColumnElement[bool]]) -> sa.Select[Any]:
    """SQLite's streaming messages in scope: not in messages_fts until they stop (0007), each is a
    candidate, which the domain then decides on as on any other. They are read through the partial
    index ix_messages_streaming (every tenant's streaming replies, which are few), not through all
    of the tenant's messages: the status is a literal, as a partial index needs, and the unary +
    keeps the tenant's key from being chosen instead."""
    on = sa.and_(c.tenant_id == sa.literal_column("+messages.tenant_id"), c.id == m.conversation_id)
    streaming = sa.select(m.conversation_id, m.id, m.seq, m.role, m.content, c.workspace, c.title)
    return streaming.select_from(messages.join(conversations, on)).where(
        *scope, sa.text("messages.status = 'streaming'")
    )


def scope_of(query: SearchQuery, now: int) -> list[sa.ColumnElement[bool]]:
    """The conversations `list_conversations` would show for the same fields."""
    where = [c.tenant_id == query.tenant, live(now), c.swept_at.is_(None)]
    if query.user is not None:
        where.append(c.user_id == query.user)
    if query.allowed_workspaces is not None:
        where.append(c.workspace.in_(sorted(query.allowed_workspaces)))
    if query.workspace is not None:
        where.append(c.workspace == query.workspace)
    return where


def _fts(name: str) -> sa.TableClause:
    return sa.table(name, sa.column("rowid", sa.Integer))


def _fts_match(table: str, terms: Sequence[str]) -> sa.TextClause:
    """Texts that hold every term as a word. Terms are letters and digits only; each is quoted as
    an FTS5 string all the same, so no term is ever read as query syntax."""
    phrases = " ".join('"' + t.replace('"', '""') + '"' for t in terms)
    return sa.text(f"{table} MATCH :terms").bindparams(terms=phrases)
