"""What the client hands back: plain dataclasses parsed from the API's JSON answers.

The enums and `Usage` are chatkeep's own (`chatkeep.models`); timestamps are timezone-aware datetimes,
as the API sends them (ISO 8601), rather than the epoch milliseconds the server stores.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar, get_args, get_type_hints

from chatkeep.models import MessageStatus, Mode, Role, Usage

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "AppendResult",
    "BatchResult",
    "CleanupResult",
    "Conversation",
    "ConversationPage",
    "Delta",
    "Event",
    "Heartbeat",
    "LoadedConversation",
    "Message",
    "MessagePage",
    "NewMessage",
    "MessageStatus",
    "Mode",
    "PersistenceSettings",
    "Role",
    "Usage",
]

D = TypeVar("D", bound="DataclassInstance")


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _time(value: str | None) -> datetime | None:
    return None if value is None else _when(value)


def _usage(data: dict[str, Any] | None) -> Usage:
    data = data or {}
    return Usage(int(data.get("input_tokens", 0)), int(data.get("output_tokens", 0)))


def _same(value: Any) -> Any:
    return value


# How a JSON value becomes a field of the type on the left; other fields take the value as it is.
_READERS: dict[Any, Callable[[Any], Any]] = {
    datetime: _when,
    datetime | None: _time,
    tuple[str, ...]: tuple,
    Usage: _usage,
    Mode: Mode,
    Role: Role,
    MessageStatus: MessageStatus,
}


# A field whose key is missing: kept at its default, read as null (a field that may be null, and
# usage, which reads null as zero), or else a KeyError, as for any required value.
_DEFAULT, _NULL, _REQUIRED = "default", "null", "required"


@functools.cache
def _readers(cls: type[DataclassInstance]) -> dict[str, tuple[Callable[[Any], Any], str]]:
    hints = get_type_hints(cls)
    readers = {}
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
            missing = _DEFAULT
        elif hint is Usage or type(None) in get_args(hint):
            missing = _NULL
        else:
            missing = _REQUIRED
        readers[f.name] = (_READERS.get(hint, _same), missing)
    return readers


def parse(cls: type[D], d: dict[str, Any]) -> D:
    """The dataclass `cls` of this module from the API's JSON object of it: each field from the key
    of its name, read as the field's type says. A missing key leaves a field at its default, reads
    as null where the field may be null (usage: zero), and otherwise raises KeyError."""
    values = {}
    for name, (read, missing) in _readers(cls).items():
        if name in d:
            values[name] = read(d[name])
        elif missing == _NULL:
            values[name] = read(None)
        elif missing == _REQUIRED:
            raise KeyError(name)
    return cls(**values)


@dataclass(frozen=True, slots=True)
class Conversation:
    id: str
    workspace: str
    user: str
    title: str
    mode: Mode
    created_at: datetime
    last_activity_at: datetime
    expires_at: datetime | None
    starred: bool
    pinned: bool
    archived: bool
    tags: tuple[str, ...]
    message_count: int
    last_seq: int
    last_message_preview: str
    usage: Usage
    version: int

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Conversation:
        return parse(cls, d)


@dataclass(frozen=True, slots=True)
class Message:
    id: str
    conversation_id: str
    seq: int
    role: Role
    content: str
    parts: list[Any] | None
    metadata: dict[str, Any] | None
    usage: Usage
    status: MessageStatus
    created_at: datetime
    # Only in the answer to an append during a Redis outage with several instances: the seq may change.
    provisional: bool = False

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Message:
        return parse(cls, d)


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to append. With no `id`, the client picks a new one (a uuid4 hex) when sending it."""

    role: Role | str
    content: str = ""
    id: str | None = None
    parts: list[Any] | None = None
    metadata: dict[str, Any] | None = None
    usage: Usage | None = None


@dataclass(frozen=True, slots=True)
class LoadedConversation:
    """A conversation with its latest messages (oldest first): what a page needs to reload."""

    conversation: Conversation
    messages: list[Message]
    has_more_messages: bool


@dataclass(frozen=True, slots=True)
class ConversationPage:
    items: list[Conversation]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class MessagePage:
    """Messages oldest first; `has_more`: more exist beyond this page in the direction of travel."""

    messages: list[Message]
    has_more: bool


@dataclass(frozen=True, slots=True)
class AppendResult:
    message: Message
    created: bool  # False when this id was already stored (a retry)


@dataclass(frozen=True, slots=True)
class BatchResult:
    results: list[AppendResult]
    provisional: bool = False


@dataclass(frozen=True, slots=True)
class Delta:
    message_id: str
    seq: int
    offset: int
    appended: str  # empty when the text was already stored (a retried delta)
    length: int


@dataclass(frozen=True, slots=True)
class Heartbeat:
    id: str
    last_activity_at: datetime
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class PersistenceSettings:
    default_mode: Mode
    ephemeral_ttl_seconds: int
    pinned_never_expire: bool


@dataclass(frozen=True, slots=True)
class CleanupResult:
    deleted: list[str]
    count: int


@dataclass(frozen=True, slots=True)
class Event:
    """An event of a followed conversation: `message.created`, `message.delta`, `message.updated`,
    `conversation.created|updated|deleted|expired`. `message` is set for the message events that carry
    one; a delta's `message_id`, `offset` and `text` are in `data` and its properties."""

    type: str
    conversation_id: str
    seq: int
    data: dict[str, Any] = field(default_factory=dict)
    message: Message | None = None

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Event:
        raw = d.get("message")
        return cls(
            type=d["type"],
            conversation_id=d["conversation_id"],
            seq=d["seq"],
            data=d,
            message=Message.from_json(raw) if isinstance(raw, dict) else None,
        )

    @property
    def message_id(self) -> str | None:
        if self.message is not None:
            return self.message.id
        value = self.data.get("message_id")
        return value if isinstance(value, str) else None

    @property
    def offset(self) -> int:
        return int(self.data.get("offset", 0))

    @property
    def text(self) -> str:
        return str(self.data.get("text", ""))
