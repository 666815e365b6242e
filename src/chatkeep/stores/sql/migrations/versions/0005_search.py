"""Full-text indexes over message text and conversation titles (see `stores/sql/search.py`).

SQLite: FTS5 tables with external content (`messages_fts` over messages.content,
`conversations_fts` over conversations.title, keyed by the rowid of their table), kept in step by
triggers on insert, delete and every update of the indexed column; the existing rows are indexed
here. The rowids tie each index to its table: a later migration that rebuilds either table (a
SQLite `batch_alter_table` that copies it) or a VACUUM must end with `INSERT INTO <fts>(<fts>)
VALUES ('rebuild')`.

PostgreSQL: a stored generated column `search_vector` on each table, the `simple` text search
vector of the letter-and-digit runs of the first 65,536 characters of the text, with a GIN index.
Stored, so that a query whose words are frequent (where the planner reads the table rather than
the index) reads vectors instead of computing them. Adding the columns rewrites both tables. An
index on (tenant, created_at DESC, conversation, seq) lets such a query walk the newest messages
and stop at the candidate cap instead of sorting every match.
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"

# (fts table, content table, column)
SQLITE_INDEXES = (("messages_fts", "messages", "content"), ("conversations_fts", "conversations", "title"))
# (index, table, column); the expression must stay exactly the one in stores/sql/search.py.
POSTGRES_INDEXES = (
    ("ix_messages_search", "messages", "content"),
    ("ix_conversations_search", "conversations", "title"),
)
POSTGRES_VECTOR = (
    r"to_tsvector('simple'::regconfig, regexp_replace(left({column}, 65536), '(\W|_)+', ' ', 'g'))"
)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for index, table, column in POSTGRES_INDEXES:
            vector = POSTGRES_VECTOR.format(column=column)
            bind.exec_driver_sql(
                f"ALTER TABLE {table} ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ({vector}) STORED"
            )
            bind.exec_driver_sql(f"CREATE INDEX {index} ON {table} USING gin (search_vector)")
        bind.exec_driver_sql(
            "CREATE INDEX ix_messages_recent ON messages (tenant_id, created_at DESC, conversation_id, seq)"
        )
        return
    for fts, table, column in SQLITE_INDEXES:
        bind.exec_driver_sql(
            f"CREATE VIRTUAL TABLE {fts} USING fts5({column}, content='{table}', content_rowid='rowid', "
            "tokenize='unicode61 remove_diacritics 0')"
        )
        insert = f"INSERT INTO {fts}(rowid, {column}) VALUES (new.rowid, new.{column});"
        delete = f"INSERT INTO {fts}({fts}, rowid, {column}) VALUES ('delete', old.rowid, old.{column});"
        bind.exec_driver_sql(f"CREATE TRIGGER {fts}_insert AFTER INSERT ON {table} BEGIN {insert} END")
        bind.exec_driver_sql(f"CREATE TRIGGER {fts}_delete AFTER DELETE ON {table} BEGIN {delete} END")
        bind.exec_driver_sql(
            f"CREATE TRIGGER {fts}_update AFTER UPDATE OF {column} ON {table} BEGIN {delete} {insert} END"
        )
        bind.exec_driver_sql(f"INSERT INTO {fts}({fts}) VALUES ('rebuild')")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        bind.exec_driver_sql("DROP INDEX ix_messages_recent")
        for index, table, _column in POSTGRES_INDEXES:
            bind.exec_driver_sql(f"DROP INDEX {index}")
            bind.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN search_vector")
        return
    for fts, _table, _column in SQLITE_INDEXES:
        for trigger in ("insert", "delete", "update"):
            bind.exec_driver_sql(f"DROP TRIGGER {fts}_{trigger}")
        bind.exec_driver_sql(f"DROP TABLE {fts}")
