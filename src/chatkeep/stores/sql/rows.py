"""Rows to models and models to rows, for tenants, conversations and messages."""

from __future__ import annotations

from typing import Any, Protocol

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

# The columns that hold the model's field of the same name as it is; the others are converted below.
TENANT_FIELDS = (
    "id",
    "name",
    "api_key_hash",
    "token_secret",
    "created_at",
    "previous_token_secret",
    "previous_secret_expires_at",
)
CONVERSATION_FIELDS = (
    "id",
    "workspace",
    "title",
    "created_at",
    "last_activity_at",
    "message_count",
    "last_seq",
    "preview",
    "version",
    "ttl_ms",
    "expires_at",
)
CONVERSATION_FLAGS = ("starred", "pinned", "archived")
MESSAGE_FIELDS = ("conversation_id", "id", "seq", "content", "created_at", "parts", "metadata")


def _columns(row: Columns, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: row[name] for name in names}


def _fields(model: object, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(model, name) for name in names}


def _usage_of(row: Columns) -> Usage:
    return Usage(row["input_tokens"], row["output_tokens"])


def _usage_values(usage: Usage) -> dict[str, int]:
    return {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}


def tenant_of(row: Columns) -> Tenant:
    return Tenant(**_columns(row, TENANT_FIELDS), settings=TenantSettings.from_json(row["settings"]))


def tenant_values(tenant: Tenant) -> dict[str, Any]:
    return {**_fields(tenant, TENANT_FIELDS), "settings": tenant.settings.to_json()}


def conversation_of(row: Columns) -> Conversation:
    """A conversation from its row's columns (an SQLAlchemy `Row._mapping` or an asyncpg `Record`)."""
    flags: dict[str, Any] = {flag: bool(row[flag]) for flag in CONVERSATION_FLAGS}
    return Conversation(
        **_columns(row, CONVERSATION_FIELDS),
        **flags,
        tenant=row["tenant_id"],
        user=row["user_id"],
        mode=Mode(row["mode"]),
        tags=tuple(row["tags"]),
        usage=_usage_of(row),
    )


def conversation_values(conversation: Conversation) -> dict[str, Any]:
    x = conversation
    return {
        **_fields(x, CONVERSATION_FIELDS + CONVERSATION_FLAGS),
        "tenant_id": x.tenant,
        "user_id": x.user,
        "mode": x.mode.value,
        "title_folded": fold(x.title),
        "tags": list(x.tags),
        **_usage_values(x.usage),
    }


def message_of(row: Columns) -> Message:
    return Message(
        **_columns(row, MESSAGE_FIELDS),
        role=Role(row["role"]),
        usage=_usage_of(row),
        status=MessageStatus(row["status"]),
    )


def message_values(tenant: str, message: Message) -> dict[str, Any]:
    x = message
    return {
        **_fields(x, MESSAGE_FIELDS),
        "tenant_id": tenant,
        "role": x.role.value,
        "status": x.status.value,
        "updated_at": x.created_at,
        **_usage_values(x.usage),
    }


# -- parameters of the message writes (`statements.py`) ---------------------------------------------


def activity_values(conversation: Conversation) -> dict[str, Any]:
    """SAVE_ACTIVITY's parameters."""
    x = conversation
    return {
        "tenant": x.tenant,
        "cid": x.id,
        "last_activity_at": x.last_activity_at,
        "expires_at": x.expires_at,
        "preview": x.preview,
        **_usage_values(x.usage),
    }


def appended_values(tenant: str, conversation: Conversation) -> dict[str, Any]:
    """UPDATE_AFTER_APPEND's parameters: SAVE_ACTIVITY's and the conversation's counters after an append."""
    x = conversation
    return {**activity_values(x), "tenant": tenant, "last_seq": x.last_seq, "message_count": x.message_count}


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
