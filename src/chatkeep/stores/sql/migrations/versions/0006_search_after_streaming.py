"""A streaming reply is indexed for search once it stops streaming (PostgreSQL).

Migration 0005's stored `search_vector` of a message was computed again on every update of the row,
so each delta of a streaming reply re-indexed the whole reply: a reply streamed in n deltas cost
O(n^2) in text search parsing, and a delta at 30 KB cost about eight times one without the column.
Here the vector is NULL while the message streams and is computed once, when it finishes; search
finds streaming replies through the partial index of streaming messages and computes their
vectors as it reads them (`stores/sql/search.py`), so what a search finds does not change.
Replacing the column rewrites the messages table once. SQLite's FTS5 triggers stay as they are.
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"

# The expression of migration 0005 and of stores/sql/search.py, which must stay exactly this.
VECTOR = r"to_tsvector('simple'::regconfig, regexp_replace(left(content, 65536), '(\W|_)+', ' ', 'g'))"
AFTER_STREAMING = f"CASE WHEN status = 'streaming' THEN NULL ELSE {VECTOR} END"


def upgrade() -> None:
    _replace_vector(AFTER_STREAMING)


def downgrade() -> None:
    _replace_vector(VECTOR)


def _replace_vector(expression: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    bind.exec_driver_sql("ALTER TABLE messages DROP COLUMN search_vector")  # and its index
    bind.exec_driver_sql(
        f"ALTER TABLE messages ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ({expression}) STORED"
    )
    bind.exec_driver_sql("CREATE INDEX ix_messages_search ON messages USING gin (search_vector)")
