"""The schema is declared twice: by the migrations (what databases get) and in `schema.py` (what the
code queries). On both SQL engines, a freshly migrated database must match the declaration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from chatkeep.stores.sql import SqlStore
from chatkeep.stores.sql.schema import metadata
from chatkeep.stores.sql.search import SEARCH_OBJECTS
from tests.conftest import open_backend


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_the_migrations_build_exactly_the_declared_schema(backend: str, tmp_path: Path) -> None:
    def differences(conn: sa.Connection) -> list[object]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return [
            d
            for d in compare_metadata(context, metadata)
            # Alembic's own bookkeeping table is not part of the declared schema.
            if not (d[0] == "remove_table" and d[1].name == "chatkeep_schema_version")  # type: ignore[index]
        ]

    async for store in open_backend(backend, str(tmp_path)):
        assert isinstance(store, SqlStore)
        found = await store._run(differences)
        # The full-text objects are declared in stores/sql/search.py, not in schema.py.
        search = [d for d in found if _name(d) in SEARCH_OBJECTS[store.dialect]]
        assert {_name(d) for d in search} == SEARCH_OBJECTS[store.dialect]
        assert [d for d in found if d not in search] == []


def _name(difference: Any) -> str:
    """The name of what a difference removes: a table or an index, or a column as table.column."""
    if difference[0] == "remove_column":
        return f"{difference[2]}.{difference[3].name}"
    return str(getattr(difference[1], "name", ""))
