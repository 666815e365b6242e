"""Alembic environment. chatkeep runs migrations itself (`SqlStore.migrate`), handing Alembic an open
connection inside a transaction; there is no alembic.ini."""

from __future__ import annotations

from alembic import context

VERSION_TABLE = "chatkeep_schema_version"

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None, version_table=VERSION_TABLE)
with context.begin_transaction():
    context.run_migrations()
