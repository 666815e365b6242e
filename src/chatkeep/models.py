"""Plain data: tenants, conversations, messages, pages and events. No I/O here."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeGuard

# One rule for every identifier a client can choose or a token can carry (tenant, workspace, user,
# conversation and message ids): letters, digits and `_ . @ + -`, starting with a letter, digit or `_`,
# at most 128 characters. No `/`, `:`, braces, spaces or control characters, so an id is safe in a
# URL path, a SQL key, a Redis key with a hash tag and a log line.
ID_MAX_LENGTH = 128
_ID_BODY = r"[A-Za-z0-9_][A-Za-z0-9_.@+\-]{0,127}"
# For OpenAPI and pydantic, whose regex engine reads `$` as the end of the text.
ID_PATTERN = rf"^{_ID_BODY}$"
_ID_RE = re.compile(_ID_BODY)


def is_id(value: object) -> TypeGuard[str]:
    """Whether `value` is a valid identifier, whole. The one check of ids and id claims: a full
    match, since `$` under `re.match` also accepts a trailing newline (`"alice\\n"`)."""
    return isinstance(value, str) and _ID_RE.fullmatch(value) is not None


JSONValue = Any
JSONObject = dict[str, Any]


def now_ms() -> int:
    """Wall-clock time in epoch milliseconds, the unit of every timestamp chatkeep stores."""
    return time.time_ns() // 1_000_000


class Mode(StrEnum):
    """Where a conversation's messages live; fixed when the conversation is created."""

    DURABLE = "durable"
    EPHEMERAL = "ephemeral"
    LOCAL = "local"
    NONE = "none"


class Role(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"
    TOOL = "tool"


class MessageStatus(StrEnum):
    COMPLETE = "complete"
    STREAMING = "streaming"
    INTERRUPTED = "interrupted"
    # A message dropped by the `trim` limit policy: only its id and seq are remembered, so that a
    # late retry of it is recognised instead of stored again.
    TRIMMED = "trimmed"


class LimitPolicy(StrEnum):
    """What a full conversation does with one more message."""

    REJECT = "reject"
    TRIM = "trim"


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens)


@dataclass(frozen=True, slots=True)
class TenantSettings:
    """A tenant's own choices; None means the server's setting."""

    default_mode: Mode = Mode.DURABLE
    ephemeral_ttl_seconds: int | None = None
    pinned_never_expire: bool | None = None
    # Longest accepted lifetime of a user token of this tenant (exp - iat).
    max_token_lifetime_seconds: int | None = None

    def to_json(self) -> JSONObject:
        return {
            "default_mode": self.default_mode.value,
            "ephemeral_ttl_seconds": self.ephemeral_ttl_seconds,
            "pinned_never_expire": self.pinned_never_expire,
            "max_token_lifetime_seconds": self.max_token_lifetime_seconds,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> TenantSettings:
        data = data or {}
        return cls(
            default_mode=Mode(data.get("default_mode", Mode.DURABLE.value)),
            ephemeral_ttl_seconds=data.get("ephemeral_ttl_seconds"),
            pinned_never_expire=data.get("pinned_never_expire"),
            max_token_lifetime_seconds=data.get("max_token_lifetime_seconds"),
        )


@dataclass(frozen=True, slots=True)
class Tenant:
    id: str
    name: str
    api_key_hash: str
    token_secret: str
    created_at: int
    settings: TenantSettings = field(default_factory=TenantSettings)
    # After a secret rotation the previous secret still verifies tokens until this time (epoch ms).
    previous_token_secret: str | None = None
    previous_secret_expires_at: int | None = None


@dataclass(frozen=True, slots=True)
class Conversation:
    tenant: str
    id: str
    workspace: str
    user: str
    mode: Mode
    title: str = ""
    created_at: int = 0
    last_activity_at: int = 0
    starred: bool = False
    pinned: bool = False
    archived: bool = False
    tags: tuple[str, ...] = ()
    message_count: int = 0
    last_seq: int = 0
    preview: str = ""
    usage: Usage = Usage()
    version: int = 1
    # Length of the sliding expiry window; None means the conversation never expires.
    ttl_ms: int | None = None
    expires_at: int | None = None

    @property
    def first_seq(self) -> int:
        """Seq of the oldest retained message (messages are contiguous from here to last_seq)."""
        return self.last_seq - self.message_count + 1


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose conversations a call may reach inside its tenant: one user's or anyone's (user None),
    in some workspaces or all (workspaces None)."""

    user: str | None = None
    workspaces: frozenset[str] | None = None

    def admits(self, user: str, workspace: str) -> bool:
        return (self.user is None or user == self.user) and (
            self.workspaces is None or workspace in self.workspaces
        )


ANYONE = Scope()


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message as a writer submits it; the store assigns seq and created_at."""

    id: str
    role: Role
    content: str = ""
    parts: list[JSONValue] | None = None
    metadata: JSONObject | None = None
    usage: Usage = Usage()
    status: MessageStatus = MessageStatus.COMPLETE


@dataclass(frozen=True, slots=True)
class Message:
    conversation_id: str
    id: str
    seq: int
    role: Role
    content: str
    created_at: int
    parts: list[JSONValue] | None = None
    metadata: JSONObject | None = None
    usage: Usage = Usage()
    status: MessageStatus = MessageStatus.COMPLETE


@dataclass(frozen=True, slots=True)
class AppendResult:
    message: Message
    created: bool


@dataclass(frozen=True, slots=True)
class AppendOutcome:
    conversation: Conversation
    results: list[AppendResult]
    # The seqs were given while the store's server was unreachable and may still change when the
    # writes are replayed (several instances; see the README's outage contract).
    provisional: bool = False

    @property
    def created_count(self) -> int:
        return sum(1 for r in self.results if r.created)


@dataclass(frozen=True, slots=True)
class MessagePage:
    """Messages in ascending seq order; has_more says whether the page stopped short of the history."""

    messages: list[Message]
    has_more: bool


@dataclass(frozen=True, slots=True)
class ConversationCursor:
    """Position in the conversation list order: pinned first, then last activity, newest first."""

    pinned: bool
    last_activity_at: int
    id: str


@dataclass(frozen=True, slots=True)
class ConversationQuery:
    tenant: str
    user: str | None = None
    # Workspaces the caller may see; None means all of the tenant's.
    allowed_workspaces: frozenset[str] | None = None
    workspace: str | None = None
    starred: bool | None = None
    pinned: bool | None = None
    archived: bool | None = None
    tag: str | None = None
    text: str | None = None
    limit: int = 20
    after: ConversationCursor | None = None


@dataclass(frozen=True, slots=True)
class ConversationPage:
    items: list[Conversation]
    next_cursor: ConversationCursor | None


@dataclass(frozen=True, slots=True)
class TTL:
    """A new expiry window for a conversation; `ms` None means it never expires."""

    ms: int | None


@dataclass(frozen=True, slots=True)
class ConversationPatch:
    """Metadata changes; None leaves a field as it is."""

    title: str | None = None
    starred: bool | None = None
    pinned: bool | None = None
    archived: bool | None = None
    tags: tuple[str, ...] | None = None
    ttl: TTL | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, name) is None for name in self.__slots__)


@dataclass(frozen=True, slots=True)
class ExpiredConversation:
    """A conversation the expiry sweeper removed."""

    tenant: str
    id: str
    workspace: str
    user: str
    mode: Mode
    expired_at: int


class EventType(StrEnum):
    MESSAGE_CREATED = "message.created"
    MESSAGE_UPDATED = "message.updated"
    MESSAGE_DELTA = "message.delta"
    CONVERSATION_CREATED = "conversation.created"
    CONVERSATION_UPDATED = "conversation.updated"
    CONVERSATION_DELETED = "conversation.deleted"
    CONVERSATION_EXPIRED = "conversation.expired"


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened to a conversation. `data` is the wire payload (see `codec`): the
    message for message events, the conversation for conversation events."""

    type: EventType
    tenant: str
    workspace: str
    user: str
    conversation_id: str
    seq: int | None = None
    version: int | None = None
    data: JSONObject = field(default_factory=dict)


def sort_key(conversation: Conversation) -> tuple[bool, int, str]:
    """The list order as a tuple; larger means earlier in the list."""
    return (conversation.pinned, conversation.last_activity_at, conversation.id)


def cursor_of(conversation: Conversation) -> ConversationCursor:
    return ConversationCursor(conversation.pinned, conversation.last_activity_at, conversation.id)


def cursor_key(cursor: ConversationCursor) -> tuple[bool, int, str]:
    return (cursor.pinned, cursor.last_activity_at, cursor.id)


# -- search -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SearchCursor:
    """Position in the search order: score, highest first, then conversation id, then seq (0 for
    the title), ascending."""

    score: int
    conversation_id: str
    seq: int


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """Full-text search over the message text and titles of the conversations a caller may list.
    `terms` are lowercase words as `chatkeep.domain.search.search_terms` makes them (letters and digits
    only); a hit holds every one of them. Scope and filters are those of `ConversationQuery`."""

    tenant: str
    terms: tuple[str, ...]
    user: str | None = None
    # Workspaces the caller may see; None means all of the tenant's.
    allowed_workspaces: frozenset[str] | None = None
    workspace: str | None = None
    limit: int = 20
    after: SearchCursor | None = None


@dataclass(frozen=True, slots=True)
class Segment:
    """A piece of a snippet: plain text, or (`match` True) a word the query asked for."""

    text: str
    match: bool = False


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A message (or, with `message_id` None and `seq` 0, the title) that holds every term."""

    conversation_id: str
    workspace: str
    title: str
    message_id: str | None
    seq: int
    role: Role | None
    snippet: tuple[Segment, ...]
    score: int

    @property
    def cursor(self) -> SearchCursor:
        return SearchCursor(self.score, self.conversation_id, self.seq)


@dataclass(frozen=True, slots=True)
class SearchPage:
    """Hits in search order. `partial` is True when the store did not search everything in scope
    (a bounded scan stopped, a candidate cap was reached, or its server was unreachable)."""

    hits: list[SearchHit]
    next_cursor: SearchCursor | None
    partial: bool = False


def search_key(cursor: SearchCursor) -> tuple[int, str, int]:
    """The search order as a tuple; smaller means earlier."""
    return (-cursor.score, cursor.conversation_id, cursor.seq)
