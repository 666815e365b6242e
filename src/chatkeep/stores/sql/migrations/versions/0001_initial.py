"""Tenants, conversations, tags and messages."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None

JSON = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
ID = sa.String(128)


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", ID, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("api_key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("token_secret", sa.String(128), nullable=False),
        sa.Column("settings", JSON, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "conversations",
        sa.Column("tenant_id", ID, primary_key=True),
        sa.Column("id", ID, primary_key=True),
        sa.Column("workspace", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("title_folded", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("last_activity_at", sa.BigInteger, nullable=False),
        sa.Column("starred", sa.Boolean, nullable=False),
        sa.Column("pinned", sa.Boolean, nullable=False),
        sa.Column("archived", sa.Boolean, nullable=False),
        sa.Column("tags", JSON, nullable=False),
        sa.Column("message_count", sa.Integer, nullable=False),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("preview", sa.Text, nullable=False),
        sa.Column("input_tokens", sa.BigInteger, nullable=False),
        sa.Column("output_tokens", sa.BigInteger, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("ttl_ms", sa.BigInteger, nullable=True),
        sa.Column("expires_at", sa.BigInteger, nullable=True),
    )
    op.create_index(
        "ix_conversations_user_order",
        "conversations",
        ["tenant_id", "user_id", "workspace", "pinned", "last_activity_at", "id"],
    )
    op.create_index(
        "ix_conversations_tenant_order", "conversations", ["tenant_id", "pinned", "last_activity_at", "id"]
    )
    op.create_index("ix_conversations_expires_at", "conversations", ["expires_at"])
    op.create_table(
        "conversation_tags",
        sa.Column("tenant_id", ID, primary_key=True),
        sa.Column("conversation_id", ID, primary_key=True),
        sa.Column("tag", sa.String(64), primary_key=True),
    )
    op.create_table(
        "messages",
        sa.Column("tenant_id", ID, primary_key=True),
        sa.Column("conversation_id", ID, primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("id", ID, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("parts", JSON, nullable=True),
        sa.Column("metadata", JSON, nullable=True),
        sa.Column("input_tokens", sa.Integer, nullable=False),
        sa.Column("output_tokens", sa.Integer, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.UniqueConstraint("tenant_id", "conversation_id", "id", name="uq_messages_client_id"),
    )


def downgrade() -> None:
    op.drop_table("messages")
    op.drop_table("conversation_tags")
    op.drop_table("conversations")
    op.drop_table("tenants")
