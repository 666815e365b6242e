"""A streaming reply is indexed for search once it stops streaming (SQLite), as 0006 did on PostgreSQL.

Migration 0005's triggers took the old text of a message out of `messages_fts` and put the new one
in on every update of its content, so each delta of a streaming reply indexed the whole reply
again: a reply streamed in n deltas cost O(n^2) in tokenizing, and at 50 KiB that was most of a
delta's cost. Here a message enters the index when it is stored complete or when it stops
streaming, and leaves it only if it was in it (the `delete` command of an external-content FTS5
table must be given exactly what was indexed). Search finds streaming replies by reading them:
they are few, and ix_messages_streaming finds them (`stores/sql/search.py`). Streaming messages
already indexed are taken out here. A later `rebuild` of `messages_fts` indexes every row, so it
must be followed by taking the streaming ones out again, as this migration does.
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"

TRIGGERS = ("messages_fts_insert", "messages_fts_delete", "messages_fts_update")
INDEXED = "status != 'streaming'"
ADD = "INSERT INTO messages_fts(rowid, content) SELECT new.rowid, new.content WHERE new.{indexed};"
REMOVE = (
    "INSERT INTO messages_fts(messages_fts, rowid, content) "
    "SELECT 'delete', old.rowid, old.content WHERE old.{indexed};"
)
REMOVE_STREAMING = (
    "INSERT INTO messages_fts(messages_fts, rowid, content) "
    "SELECT 'delete', rowid, content FROM messages WHERE status = 'streaming'"
)
# Migration 0005's triggers, for the downgrade.
OLD = {
    "messages_fts_insert": "AFTER INSERT ON messages BEGIN "
    "INSERT INTO messages_fts(rowid, content) VALUES (new.rowid, new.content); END",
    "messages_fts_delete": "AFTER DELETE ON messages BEGIN "
    "INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.rowid, old.content); END",
    "messages_fts_update": "AFTER UPDATE OF content ON messages BEGIN "
    "INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.rowid, old.content); "
    "INSERT INTO messages_fts(rowid, content) VALUES (new.rowid, new.content); END",
}
NEW = {
    "messages_fts_insert": f"AFTER INSERT ON messages BEGIN {ADD.format(indexed=INDEXED)} END",
    "messages_fts_delete": f"AFTER DELETE ON messages BEGIN {REMOVE.format(indexed=INDEXED)} END",
    # A finish changes the status and maybe not the content: both columns start it.
    "messages_fts_update": "AFTER UPDATE OF content, status ON messages BEGIN "
    f"{REMOVE.format(indexed=INDEXED)} {ADD.format(indexed=INDEXED)} END",
}


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    bind.exec_driver_sql(REMOVE_STREAMING)
    _replace_triggers(NEW)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    _replace_triggers(OLD)
    bind.exec_driver_sql(
        "INSERT INTO messages_fts(rowid, content) "
        "SELECT rowid, content FROM messages WHERE status = 'streaming'"
    )


def _replace_triggers(triggers: dict[str, str]) -> None:
    bind = op.get_bind()
    for name in TRIGGERS:
        bind.exec_driver_sql(f"DROP TRIGGER {name}")
        bind.exec_driver_sql(f"CREATE TRIGGER {name} {triggers[name]}")
