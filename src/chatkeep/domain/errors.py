"""The errors the write rules raise, each written once: every store and the service raise these, so a
message, a code and its details read the same whatever answered."""

from __future__ import annotations

from chatkeep.errors import Conflict, Expired, NotFound, QuotaExceeded, TooLarge, VersionMismatch
from chatkeep.models import Message


def tenant_exists(tenant_id: str) -> Conflict:
    return Conflict(f"tenant {tenant_id!r} exists", code="tenant_exists")


def tenant_not_found(tenant_id: str) -> NotFound:
    return NotFound(f"tenant {tenant_id!r} not found")


def conversation_exists(conversation_id: str) -> Conflict:
    return Conflict(f"conversation {conversation_id!r} exists", code="conversation_exists")


def conversation_not_found(conversation_id: str) -> NotFound:
    return NotFound(f"conversation {conversation_id!r} not found")


def conversation_expired(conversation_id: str) -> Expired:
    return Expired(f"conversation {conversation_id!r} expired")


def message_not_found(message_id: str) -> NotFound:
    return NotFound(f"message {message_id!r} not found", code="message_not_found")


def version_mismatch(conversation_id: str, current: int) -> VersionMismatch:
    return VersionMismatch(
        f"conversation {conversation_id!r} is at version {current}", current_version=current
    )


def local_only(conversation_id: str) -> Conflict:
    return Conflict(
        f"conversation {conversation_id!r} is local: its messages live in the browser only", code="local_only"
    )


def message_limit(conversation_id: str, count: int, limit: int) -> QuotaExceeded:
    return QuotaExceeded(
        f"conversation {conversation_id!r} holds {count} messages; the limit is {limit}",
        code="message_limit",
        limit=limit,
    )


def conversation_limit(holder: str, count: int, limit: int) -> QuotaExceeded:
    """`holder`: "tenant" or "user"."""
    return QuotaExceeded(
        f"the {holder} holds {count} conversations; the limit is {limit}",
        code="conversation_limit",
        limit=limit,
    )


def message_id_conflict(stored: Message) -> Conflict:
    return Conflict(
        f"message id {stored.id!r} is already stored with other content; a retry must send the same "
        "message, and a new message needs a new id",
        code="message_id_conflict",
        message=stored,
    )


def batch_id_conflict(message_id: str) -> Conflict:
    return Conflict(
        f"message id {message_id!r} appears twice in this batch with different content",
        code="message_id_conflict",
    )


def not_streaming(message: Message) -> Conflict:
    return Conflict(
        f"message {message.id!r} is {message.status.value}, not streaming",
        code="not_streaming",
        message_status=message.status.value,
    )


def offset_mismatch(message: Message, offset: int) -> Conflict:
    length = len(message.content)
    return Conflict(
        f"message {message.id!r} holds {length} characters; this delta does not continue them at {offset}",
        code="offset_mismatch",
        length=length,
    )


def message_too_large(message_id: str, limit: int) -> TooLarge:
    return TooLarge(
        f"message {message_id!r} would exceed {limit} bytes", code="message_too_large", limit=limit
    )


def import_conflict(conversation_id: str) -> Conflict:
    return Conflict(
        f"conversation {conversation_id!r} exists with other content (changed since it was exported, "
        "or another conversation with this id); delete it first to import it again",
        code="import_conflict",
    )
