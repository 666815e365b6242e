"""The SQL store: SQLite (the embedded default) and PostgreSQL, one code path, Alembic migrations."""

from chatkeep.stores.sql.store import SqlStore

__all__ = ["SqlStore"]
