"""Rows to models and models to rows, for tenants, conversations and messages."""

from __future__ import annotations

from typing import Any, Protocol

import sqlalchemy as sa

from chatkeep.domain import (
    fold,
)
from chatkeep.models import (
    Conversation,
    Message,
    MessageStatus,
    Mode,
    Role,
    Tenant,
    TenantSettings,
    Usage,
)


class Columns(Protocol):
    """A row's columns by name: an SQLAlchemy `Row._mapping`, an asyncpg `Record`."""

    def __getitem__(self, name: str, /) -> Any: ...


# -- rows <-> models --------------------------------------------------------------------------------


def tenant_of(row: sa.Row[Any]) -> Tenant:
    return Tenant(
        id=row.id,
        name=row.name,
        api_key_hash=row.api_key_hash,
        token_secret=row.token_secret,
        created_at=row.created_at,
        settings=TenantSettings.from_json(row.settings),
        previous_token_secret=row.previous_token_secret,
        previous_secret_expires_at=row.previous_secret_expires_at,
    )


def tenant_values(tenant: Tenant) -> dict[str, Any]:
    return {
        "id": tenant.id,
        "name": tenant.name,
        "api_key_hash": tenant.api_key_hash,
        "token_secret": tenant.token_secret,
        "settings": tenant.settings.to_json(),
        "created_at": tenant.created_at,
        "previous_token_secret": tenant.previous_token_secret,
        "previous_secret_expires_at": tenant.previous_secret_expires_at,
    }


def conversation_of(row: Columns) -> Conversation:
    """A conversation from its row's columns (an SQLAlchemy `Row._mapping` or an asyncpg `Record`)."""
    return Conversation(
        tenant=row["tenant_id"],
        id=row["id"],
        workspace=row["workspace"],
        user=row["user_id"],
        mode=Mode(row["mode"]),
        title=row["title"],
        created_at=row["created_at"],
        last_activity_at=row["last_activity_at"],
        starred=bool(row["starred"]),
        pinned=bool(row["pinned"]),
        archived=bool(row["archived"]),
        tags=tuple(row["tags"]),
        message_count=row["message_count"],
        last_seq=row["last_seq"],
        preview=row["preview"],
        usage=Usage(row["input_tokens"], row["output_tokens"]),
        version=row["version"],
        ttl_ms=row["ttl_ms"],
        expires_at=row["expires_at"],
    )


def conversation_values(conversation: Conversation) -> dict[str, Any]:
    x = conversation
    return {
        "tenant_id": x.tenant,
        "id": x.id,
        "workspace": x.workspace,
        "user_id": x.user,
        "mode": x.mode.value,
        "title": x.title,
        "title_folded": fold(x.title),
        "created_at": x.created_at,
        "last_activity_at": x.last_activity_at,
        "starred": x.starred,
        "pinned": x.pinned,
        "archived": x.archived,
        "tags": list(x.tags),
        "message_count": x.message_count,
        "last_seq": x.last_seq,
        "preview": x.preview,
        "input_tokens": x.usage.input_tokens,
        "output_tokens": x.usage.output_tokens,
        "version": x.version,
        "ttl_ms": x.ttl_ms,
        "expires_at": x.expires_at,
    }


def message_of(row: Columns) -> Message:
    return Message(
        conversation_id=row["conversation_id"],
        id=row["id"],
        seq=row["seq"],
        role=Role(row["role"]),
        content=row["content"],
        created_at=row["created_at"],
        parts=row["parts"],
        metadata=row["metadata"],
        usage=Usage(row["input_tokens"], row["output_tokens"]),
        status=MessageStatus(row["status"]),
    )


def message_values(tenant: str, message: Message) -> dict[str, Any]:
    x = message
    return {
        "tenant_id": tenant,
        "conversation_id": x.conversation_id,
        "seq": x.seq,
        "id": x.id,
        "role": x.role.value,
        "content": x.content,
        "parts": x.parts,
        "metadata": x.metadata,
        "input_tokens": x.usage.input_tokens,
        "output_tokens": x.usage.output_tokens,
        "created_at": x.created_at,
        "status": x.status.value,
        "updated_at": x.created_at,
    }


# -- parameters of the message writes (`statements.py`) ---------------------------------------------


def appended_values(tenant: str, conversation: Conversation) -> dict[str, Any]:
    """UPDATE_AFTER_APPEND's parameters: the conversation's counters after an append."""
    x = conversation
    return {
        "tenant": tenant,
        "cid": x.id,
        "last_seq": x.last_seq,
        "message_count": x.message_count,
        "last_activity_at": x.last_activity_at,
        "preview": x.preview,
        "input_tokens": x.usage.input_tokens,
        "output_tokens": x.usage.output_tokens,
        "expires_at": x.expires_at,
    }


def activity_values(conversation: Conversation) -> dict[str, Any]:
    """SAVE_ACTIVITY's parameters."""
    x = conversation
    return {
        "tenant": x.tenant,
        "cid": x.id,
        "last_activity_at": x.last_activity_at,
        "expires_at": x.expires_at,
        "preview": x.preview,
        "input_tokens": x.usage.input_tokens,
        "output_tokens": x.usage.output_tokens,
    }


def saved_message_values(tenant: str, message: Message, now: int) -> dict[str, Any]:
    """SAVE_MESSAGE's parameters."""
    x = message
    return {
        "tenant": tenant,
        "cid": x.conversation_id,
        "message_seq": x.seq,
        "content": x.content,
        "status": x.status.value,
        "message_input_tokens": x.usage.input_tokens,
        "message_output_tokens": x.usage.output_tokens,
        "now": now,
    }
