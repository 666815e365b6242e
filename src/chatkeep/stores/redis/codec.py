"""How the Redis store writes models into hashes and script arguments, and reads them back."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from chatkeep.models import (
    Conversation,
    ConversationCursor,
    Message,
    MessageStatus,
    Mode,
    NewMessage,
    Role,
    Scope,
    Usage,
)

PINNED = 2**43  # the list score of a pinned conversation is offset by this (above any ms timestamp)
SEP = "\x1f"


def opt(value: int | None) -> str | int:
    return "" if value is None else value


def field_text(value: bool | str) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return value


def scope_args(scope: Scope) -> list[str]:
    workspaces = "*" if scope.workspaces is None else SEP.join(sorted(scope.workspaces))
    return [scope.user or "", workspaces]


def owner_of(c: Conversation) -> str:
    return SEP.join((c.user, c.workspace, c.mode.value))


def list_score(c: Conversation) -> int:
    return c.last_activity_at + (PINNED if c.pinned else 0)


def cursor_score(cursor: ConversationCursor) -> int:
    return cursor.last_activity_at + (PINNED if cursor.pinned else 0)


def pairs_of(flat: Sequence[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def text(value: int | None) -> str:
    return "" if value is None else str(value)


def record_of(c: Conversation) -> dict[str, str]:
    """The record hash of a conversation, field by field, as Redis stores it."""
    return {
        "ws": c.workspace,
        "user": c.user,
        "mode": c.mode.value,
        "title": c.title,
        "created": str(c.created_at),
        "active": str(c.last_activity_at),
        "starred": field_text(c.starred),
        "pinned": field_text(c.pinned),
        "archived": field_text(c.archived),
        "tags": orjson.dumps(list(c.tags)).decode(),
        "count": str(c.message_count),
        "last": str(c.last_seq),
        "preview": c.preview,
        "in": str(c.usage.input_tokens),
        "out": str(c.usage.output_tokens),
        "version": str(c.version),
        "ttl": text(c.ttl_ms),
        "exp": text(c.expires_at),
    }


def conversation_of(tenant: str, cid: str, f: dict[str, str]) -> Conversation:
    return Conversation(
        tenant=tenant,
        id=cid,
        workspace=f["ws"],
        user=f["user"],
        mode=Mode(f["mode"]),
        title=f["title"],
        created_at=int(f["created"]),
        last_activity_at=int(f["active"]),
        starred=f["starred"] == "1",
        pinned=f["pinned"] == "1",
        archived=f["archived"] == "1",
        tags=tuple(orjson.loads(f["tags"])),
        message_count=int(f["count"]),
        last_seq=int(f["last"]),
        preview=f["preview"],
        usage=Usage(int(f["in"]), int(f["out"])),
        version=int(f["version"]),
        ttl_ms=int(f["ttl"]) if f["ttl"] else None,
        expires_at=int(f["exp"]) if f["exp"] else None,
    )


def body_of(m: NewMessage | Message) -> dict[str, Any]:
    """What the `m` hash keeps of a message besides its seq and creation time."""
    return {
        "id": m.id,
        "role": m.role.value,
        "content": m.content,
        "parts": m.parts,
        "metadata": m.metadata,
        "in": m.usage.input_tokens,
        "out": m.usage.output_tokens,
        "status": m.status.value,
    }


def encode(m: Message, updated: int | None = None) -> str:
    """A message as stored in the `m` hash: [seq, created_at, body]; `updated` is when it last changed
    (absent: when it was created)."""
    body = body_of(m) if updated is None else {**body_of(m), "updated": updated}
    return orjson.dumps([m.seq, m.created_at, body]).decode()


def decode(cid: str, raw: str) -> tuple[Message, int]:
    """A stored message and when it last changed."""
    seq, created_at, body = orjson.loads(raw)
    updated = body.get("updated")
    return message_of(cid, seq, created_at, body), updated if updated is not None else created_at


def stored_message(cid: str, raw: str) -> Message:
    seq, created_at, body = orjson.loads(raw)
    return message_of(cid, seq, created_at, body)


def message_of(cid: str, seq: int, created_at: int, body: dict[str, Any]) -> Message:
    return Message(
        conversation_id=cid,
        id=body["id"],
        seq=seq,
        role=Role(body["role"]),
        content=body["content"],
        created_at=created_at,
        parts=body["parts"],
        metadata=body["metadata"],
        usage=Usage(body["in"], body["out"]),
        status=MessageStatus(body["status"]),
    )
