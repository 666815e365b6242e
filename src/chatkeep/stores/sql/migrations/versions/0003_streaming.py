"""When each message was last changed, to find streaming replies whose writer went away."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("updated_at", sa.BigInteger, nullable=True))
    streaming = sa.text("status = 'streaming'")
    op.create_index(
        "ix_messages_streaming",
        "messages",
        ["updated_at"],
        postgresql_where=streaming,
        sqlite_where=streaming,
    )


def downgrade() -> None:
    op.drop_index("ix_messages_streaming", "messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("updated_at")
