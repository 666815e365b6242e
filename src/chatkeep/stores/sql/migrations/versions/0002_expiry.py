"""Mark conversations the expiry sweeper removed (tombstones); order ids by code point."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("swept_at", sa.BigInteger, nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        # The conversation list breaks ties by id, and lists from several stores are merged: every
        # store must order ids the same way, by code point (SQLite already does).
        op.execute('ALTER TABLE conversations ALTER COLUMN id TYPE VARCHAR(128) COLLATE "C"')


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE conversations ALTER COLUMN id TYPE VARCHAR(128)")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("swept_at")
