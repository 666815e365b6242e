"""Request and response shapes of the REST API, as pydantic models (and so as OpenAPI).

Requests are strict: unknown fields and wrong types are refused, never coerced. Responses are built
by `chatkeep.codec`; these models document them, and a test checks that the two agree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictStr

from chatkeep.models import ID_MAX_LENGTH, ID_PATTERN, MessageStatus, Mode, Role
from chatkeep.service.validation import MAX_TAG_CHARS, MAX_TAGS, MAX_TITLE_CHARS

MAX_SEQ = 2**53  # the largest integer a JavaScript client holds exactly


def _integer(value: Any) -> Any:
    """JSON integers, including integral floats such as 3.0; never booleans or strings."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("must be an integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be an integer")
        return int(value)
    return value


Id = Annotated[StrictStr, Field(pattern=ID_PATTERN, max_length=ID_MAX_LENGTH, examples=["c-42"])]
TokenCount = Annotated[int, Field(ge=0, le=1_000_000_000), BeforeValidator(_integer)]
TEXT_NOTE = "Text must not contain NUL characters or unpaired surrogates."
# Documented, not enforced here: the service refuses NUL with its own code (invalid_text).
TEXT_PATTERN = r"^[^\x00]*$"
TEXT_SCHEMA: dict[str, Any] = {"pattern": TEXT_PATTERN}
Title = Annotated[
    StrictStr, Field(max_length=MAX_TITLE_CHARS, description=TEXT_NOTE, json_schema_extra=TEXT_SCHEMA)
]
# At least one visible character, no control characters. The whitespace a tag may not consist of is
# spelled out: `\s` means other characters to ECMA, Rust and Python's ASCII mode, and the document
# must mean the same to every reader.
TAG_PATTERN = (
    r"^[^\x00-\x1f]*[^\x00-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f]*$"
)
Tag = Annotated[StrictStr, Field(min_length=1, max_length=MAX_TAG_CHARS, pattern=TAG_PATTERN)]
Tags = Annotated[list[Tag], Field(max_length=MAX_TAGS)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UsageIn(StrictModel):
    input_tokens: TokenCount = 0
    output_tokens: TokenCount = 0


class ConversationCreate(StrictModel):
    workspace: Id = Field(description="Workspace the conversation belongs to.")
    id: Id | None = Field(None, description="Client-chosen id; a UUID is generated when omitted.")
    title: Title = ""
    mode: Mode | None = Field(None, description="Persistence mode; the tenant's default when omitted.")
    user: Id | None = Field(
        None, description="Owner, with a tenant API key only; a user token owns what it creates."
    )
    tags: Tags = Field(default_factory=list)
    starred: StrictBool = False
    pinned: StrictBool = False
    archived: StrictBool = False


class ConversationUpdate(StrictModel):
    """The fields to change (at least one); omitted fields are left as they are."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    # Not nullable: leave a field out to keep it. The None defaults only mark "not sent".
    title: Title = None  # type: ignore[assignment]
    starred: StrictBool = None  # type: ignore[assignment]
    pinned: StrictBool = None  # type: ignore[assignment]
    archived: StrictBool = None  # type: ignore[assignment]
    tags: Tags = None  # type: ignore[assignment]
    mode: Mode = Field(  # type: ignore[assignment]
        None, description="Fixed at creation: another mode answers 409 persistence_immutable."
    )


class MessageCreate(StrictModel):
    id: Id | None = Field(None, description="Client message id; a retry with the same id is stored once.")
    role: Role
    content: StrictStr = Field("", description=TEXT_NOTE, json_schema_extra=TEXT_SCHEMA)
    parts: list[Any] | None = Field(None, description="Structured parts (free-form JSON).")
    metadata: dict[str, Any] | None = Field(None, description="Free-form JSON object.")
    usage: UsageIn | None = None
    status: Literal["complete", "streaming"] = Field(
        "complete", description="`streaming` opens a reply that deltas then grow until it is finished."
    )


class DeltaCreate(StrictModel):
    text: StrictStr = Field(max_length=65_536, description=TEXT_NOTE, json_schema_extra=TEXT_SCHEMA)
    offset: Annotated[int, Field(ge=0, le=10**9), BeforeValidator(_integer)] | None = Field(
        None,
        description="The content length (in characters) the writer has sent before this text. With it a "
        "retried delta is not stored twice; without it the text goes at the end.",
    )


class Delta(BaseModel):
    message_id: str
    seq: int
    offset: int = Field(description="Where the newly stored text starts.")
    appended: str = Field(description="What this call added (empty when it was already stored).")
    length: int = Field(description="The content length after this delta.")


class StreamFinish(StrictModel):
    status: Literal["complete", "interrupted"] = "complete"
    usage: UsageIn | None = None


class MessageBatchCreate(StrictModel):
    messages: list[MessageCreate] = Field(min_length=1)


class Usage(BaseModel):
    input_tokens: int
    output_tokens: int


class Conversation(BaseModel):
    id: str
    workspace: str
    user: str
    title: str
    mode: Mode
    created_at: datetime
    last_activity_at: datetime
    expires_at: datetime | None = Field(description="When it expires unless active again; null: never.")
    starred: bool
    pinned: bool
    archived: bool
    tags: list[str]
    message_count: int
    last_seq: int = Field(description="Seq of the newest message (0 when empty).")
    last_message_preview: str
    usage: Usage = Field(description="Token totals over all messages.")
    version: int = Field(description="Bumped by every metadata change; send it back as If-Match.")


class Message(BaseModel):
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


class AppendedMessage(Message):
    provisional: bool | None = Field(
        None,
        description="Only in the answer to an append during a Redis outage with several instances: "
        "the seq may still change; the final one arrives as a `message.created` event.",
    )


class ConversationWithMessages(Conversation):
    messages: list[Message] = Field(description="The latest messages, oldest first.")
    has_more_messages: bool = Field(description="Older messages exist; page with GET .../messages?before=.")


class ConversationList(BaseModel):
    items: list[Conversation]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class MessageList(BaseModel):
    messages: list[Message] = Field(description="Oldest first.")
    has_more: bool = Field(description="More messages exist beyond this page in the direction of travel.")


class AppendResult(BaseModel):
    created: bool = Field(description="False when this id was already stored (a retry).")
    message: Message


class BatchResult(BaseModel):
    results: list[AppendResult]
    provisional: bool | None = Field(
        None, description="The seqs may still change (see `AppendedMessage.provisional`)."
    )


class Heartbeat(BaseModel):
    id: str
    last_activity_at: datetime
    expires_at: datetime | None = Field(
        description="The new expiry; null for conversations that never expire."
    )


ModeName = Literal["durable", "ephemeral", "local", "none"]
SESSION_MODE_NAMES: tuple[ModeName, ...] = ("ephemeral", "none")


class CleanupRequest(StrictModel):
    """Which of the caller's conversations to delete. Sent as application/json with an
    Authorization header, or as text/plain (what navigator.sendBeacon sends) with `token`."""

    strategy: Literal["all", "inactive", "specific"]
    ids: list[Id] = Field(default_factory=list, max_length=500, description="For `specific`.")
    idle_seconds: Annotated[int, Field(ge=0, le=10**9), BeforeValidator(_integer)] = Field(
        3600, description="For `inactive`: idle for longer than this."
    )
    workspace: Id | None = None
    user: Id | None = Field(None, description="Tenant API key only; every user when omitted.")
    modes: list[ModeName] = Field(
        default_factory=lambda: list(SESSION_MODE_NAMES),
        max_length=4,
        description="For `all` and `inactive`: the persistence modes to clean (sessions by default).",
    )
    token: Annotated[StrictStr, Field(max_length=4096)] | None = Field(
        None, description="The credential, when no Authorization header can be sent (sendBeacon)."
    )


class CleanupResult(BaseModel):
    deleted: list[str]
    count: int


class PersistenceSettings(BaseModel):
    default_mode: Mode = Field(description="The mode of conversations created without one.")
    ephemeral_ttl_seconds: int = Field(description="Sliding expiry of ephemeral conversations.")
    pinned_never_expire: bool = Field(description="Pinned ephemeral conversations do not expire.")


class PersistenceSettingsUpdate(StrictModel):
    """The settings to change (at least one); omitted fields keep their value, null restores the
    server's default."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    # Not nullable: leave it out to keep it. The None default only marks "not sent".
    default_mode: Mode = None  # type: ignore[assignment]
    ephemeral_ttl_seconds: Annotated[int, Field(ge=1, le=365 * 86_400), BeforeValidator(_integer)] | None = (
        Field(None, description="null: the server's default.")
    )
    pinned_never_expire: StrictBool | None = Field(None, description="null: the server's default.")


# -- WebSocket frames (client to server); see api/websocket.py ----------------------------------------

FrameId = Annotated[StrictStr, Field(max_length=64)]
Seq = Annotated[int, Field(ge=0, le=MAX_SEQ), BeforeValidator(_integer)]


class AuthFrame(StrictModel):
    type: Literal["auth"]
    token: Annotated[StrictStr, Field(max_length=4096)]


class SubscribeFrame(StrictModel):
    type: Literal["subscribe", "unsubscribe"]
    id: FrameId | None = None
    conversation_id: Id | None = None
    workspace: Annotated[StrictStr, Field(pattern=rf"^\*$|{ID_PATTERN}")] | None = None
    after_seq: Seq | None = Field(
        None, description="Resume: the last seq held in final form; what came after is sent first."
    )


class AppendFrame(StrictModel):
    type: Literal["append"]
    id: FrameId | None = None
    conversation_id: Id
    message: MessageCreate


class HeartbeatFrame(StrictModel):
    type: Literal["heartbeat"]
    id: FrameId | None = None
    conversation_id: Id


class DeltaFrame(StrictModel):
    type: Literal["stream.delta"]
    id: FrameId | None = None
    conversation_id: Id
    message_id: Id
    text: StrictStr = Field(max_length=65_536)
    offset: Seq | None = None


class FinishFrame(StrictModel):
    type: Literal["stream.finish"]
    id: FrameId | None = None
    conversation_id: Id
    message_id: Id
    status: Literal["complete", "interrupted"] = "complete"
    usage: UsageIn | None = None


class PingFrame(StrictModel):
    type: Literal["ping"]
    id: FrameId | None = None


class Problem(BaseModel):
    """An error (RFC 9457). `code` is stable and meant for programs; `detail` is for people."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    code: str


class Health(BaseModel):
    status: str
    stores: dict[str, str] = Field(default_factory=dict)


class DevToken(BaseModel):
    token: str
    tenant: str
    user: str
    workspaces: list[str]
    expires_in: int
