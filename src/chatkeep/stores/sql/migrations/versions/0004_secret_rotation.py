"""A tenant's previous token secret, still accepted for an overlap window after a rotation."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("previous_token_secret", sa.String(128), nullable=True))
        batch.add_column(sa.Column("previous_secret_expires_at", sa.BigInteger, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("previous_secret_expires_at")
        batch.drop_column("previous_token_secret")
