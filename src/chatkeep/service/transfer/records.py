"""chatkeep's own export records and how they read back.

A record is the API's JSON shape of a conversation or a message (`chatkeep.codec`), plus what a
faithful copy needs that the API does not show (`ttl_ms`). Timestamps are ISO 8601 with milliseconds,
which is exactly the precision chatkeep stores, so a record reads back to the same values.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime
from typing import Any

from chatkeep import codec
from chatkeep.models import Conversation, Message, MessageStatus, Mode, Role, Usage, is_id

FORMAT = "chatkeep"
VERSION = 1
_ISO = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.(\d{3})Z")


class RecordError(Exception):
    """A record that does not read: which field, and why."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.detail = detail


def conversation_record(c: Conversation) -> dict[str, Any]:
    return {**codec.conversation_json(c), "ttl_ms": c.ttl_ms}


def message_record(m: Message) -> dict[str, Any]:
    return codec.message_json(m)


def ms_of(value: Any, field: str) -> int:
    """Epoch milliseconds from an ISO 8601 UTC timestamp as `codec.iso` writes it."""
    match = _ISO.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise RecordError(field, f"{str(value)[:40]!r} is not a timestamp like 2026-01-31T12:00:00.000Z")
    year, month, day, hour, minute, second, millis = (int(g) for g in match.groups())
    try:
        moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        raise RecordError(field, f"{value!r} is not a valid time") from None
    return calendar.timegm(moment.utctimetuple()) * 1000 + millis


class _Fields:
    """Typed access to a record's fields, each failure naming the field."""

    def __init__(self, record: Any, prefix: str = "") -> None:
        if not isinstance(record, dict):
            raise RecordError(prefix.rstrip(".") or "record", "is not a JSON object")
        self.record = record
        self.prefix = prefix

    def name(self, key: str) -> str:
        return self.prefix + key

    def get(self, key: str, kind: type | tuple[type, ...], *, default: Any = ..., null: bool = False) -> Any:
        if key not in self.record:
            if default is ...:
                raise RecordError(self.name(key), "is missing")
            return default
        value = self.record[key]
        if value is None and null:
            return None
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise RecordError(self.name(key), f"has the wrong type ({type(value).__name__})")
        return value

    def count(self, key: str, *, null: bool = False) -> Any:
        value = self.get(key, int, null=null)
        if value is not None and value < 0:
            raise RecordError(self.name(key), "is negative")
        return value

    def ident(self, key: str) -> str:
        value = self.get(key, str)
        if not is_id(value):
            raise RecordError(self.name(key), f"{value[:40]!r} is not a valid id")
        return value

    def time(self, key: str, *, null: bool = False) -> int | None:
        value = self.get(key, str, null=null)
        return None if value is None else ms_of(value, self.name(key))

    def usage(self) -> Usage:
        usage = _Fields(self.get("usage", dict), self.name("usage."))
        return Usage(usage.count("input_tokens"), usage.count("output_tokens"))

    def choice(self, key: str, kind: type[Mode] | type[Role] | type[MessageStatus]) -> Any:
        value = self.get(key, str)
        try:
            return kind(value)
        except ValueError:
            raise RecordError(
                self.name(key), f"{value[:40]!r} is not one of {[k.value for k in kind]}"
            ) from None


def conversation_of(record: Any, tenant: str) -> Conversation:
    """A conversation record read back (tenant from the importer); `RecordError` names a bad field."""
    f = _Fields(record)
    tags = f.get("tags", list)
    if not all(isinstance(tag, str) for tag in tags):
        raise RecordError("tags", "holds a value that is not a string")
    return Conversation(
        tenant=tenant,
        id=f.ident("id"),
        workspace=f.ident("workspace"),
        user=f.ident("user"),
        mode=f.choice("mode", Mode),
        title=f.get("title", str),
        created_at=f.time("created_at") or 0,
        last_activity_at=f.time("last_activity_at") or 0,
        starred=f.get("starred", bool),
        pinned=f.get("pinned", bool),
        archived=f.get("archived", bool),
        tags=tuple(tags),
        message_count=f.count("message_count"),
        last_seq=f.count("last_seq"),
        preview=f.get("last_message_preview", str),
        usage=f.usage(),
        version=f.count("version"),
        ttl_ms=f.count("ttl_ms", null=True),
        expires_at=f.time("expires_at", null=True),
    )


def message_of(record: Any, conversation_id: str, prefix: str) -> Message:
    """A message record read back into `conversation_id`; `prefix` names it in errors
    (`messages[3].`). A `conversation_id` field, when present, must name that conversation."""
    f = _Fields(record, prefix)
    owner = f.get("conversation_id", str, default=conversation_id)
    if owner != conversation_id:
        raise RecordError(f.name("conversation_id"), f"{owner[:40]!r} is not {conversation_id!r}")
    metadata = f.get("metadata", dict, null=True, default=None)
    return Message(
        conversation_id=conversation_id,
        id=f.ident("id"),
        seq=f.count("seq"),
        role=f.choice("role", Role),
        content=f.get("content", str),
        created_at=f.time("created_at") or 0,
        parts=f.get("parts", list, null=True, default=None),
        metadata=metadata,
        usage=f.usage(),
        status=f.choice("status", MessageStatus),
    )
