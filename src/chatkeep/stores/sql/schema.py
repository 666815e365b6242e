"""The SQL schema as SQLAlchemy Core tables, shared by SQLite and PostgreSQL.

Every table is keyed by tenant first, so the schema can be distributed by tenant. Timestamps are
epoch milliseconds (BIGINT): exact, portable and cheap to compare. Migrations in `migrations/` create
these tables; this module describes them for queries.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

metadata = sa.MetaData()

JSON = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
ID = sa.String(128)

tenants = sa.Table(
    "tenants",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("api_key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("token_secret", sa.String(128), nullable=False),
    sa.Column("settings", JSON, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    # The secret before the last rotation, still accepted until previous_secret_expires_at.
    sa.Column("previous_token_secret", sa.String(128), nullable=True),
    sa.Column("previous_secret_expires_at", sa.BigInteger, nullable=True),
)

conversations = sa.Table(
    "conversations",
    metadata,
    sa.Column("tenant_id", ID, primary_key=True),
    # Code-point order (COLLATE "C" on PostgreSQL, set by migration 0002), as every store orders ids.
    sa.Column("id", ID, primary_key=True),
    sa.Column("workspace", ID, nullable=False),
    sa.Column("user_id", ID, nullable=False),
    sa.Column("mode", sa.String(16), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    # casefold(title), so the title filter matches the same way on every backend
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
    # When the expiry sweeper removed this conversation's messages; the row stays as a tombstone.
    sa.Column("swept_at", sa.BigInteger, nullable=True),
    # The list order (pinned, last activity, id), for one user's workspace and for the whole tenant.
    sa.Index(
        "ix_conversations_user_order", "tenant_id", "user_id", "workspace", "pinned", "last_activity_at", "id"
    ),
    sa.Index("ix_conversations_tenant_order", "tenant_id", "pinned", "last_activity_at", "id"),
    sa.Index("ix_conversations_expires_at", "expires_at"),
)

conversation_tags = sa.Table(
    "conversation_tags",
    metadata,
    sa.Column("tenant_id", ID, primary_key=True),
    sa.Column("conversation_id", ID, primary_key=True),
    sa.Column("tag", sa.String(64), primary_key=True),
)

messages = sa.Table(
    "messages",
    metadata,
    sa.Column("tenant_id", ID, primary_key=True),
    sa.Column("conversation_id", ID, primary_key=True),
    # The primary key (tenant, conversation, seq) is the index every page read walks.
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
    # Last change; the partial index ix_messages_streaming finds streaming replies gone quiet.
    sa.Column("updated_at", sa.BigInteger, nullable=True),
    # Idempotent appends look a client's message id up here.
    sa.UniqueConstraint("tenant_id", "conversation_id", "id", name="uq_messages_client_id"),
    sa.Index(
        "ix_messages_streaming",
        "updated_at",
        postgresql_where=sa.text("status = 'streaming'"),
        sqlite_where=sa.text("status = 'streaming'"),
    ),
)
