"""ChatService: the rules for conversations and messages, over the Store and EventBus contracts."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from chatkeep import codec
from chatkeep.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    PreconditionRequired,
    TooLarge,
)
from chatkeep.events.base import EventBus
from chatkeep.models import (
    ID_RE,
    AppendOutcome,
    Conversation,
    ConversationCursor,
    ConversationPage,
    ConversationPatch,
    ConversationQuery,
    Event,
    EventType,
    JSONObject,
    JSONValue,
    Message,
    MessagePage,
    MessageStatus,
    Mode,
    NewMessage,
    Role,
    Usage,
)
from chatkeep.service.auth import Principal
from chatkeep.service.limits import Limits
from chatkeep.service.routing import StoreRouter
from chatkeep.service.validation import (
    MAX_TAG_CHARS,
    MAX_TITLE_CHARS,
    check_id,
    check_message,
    check_tags,
    check_text,
)
from chatkeep.stores.base import Store

DEFAULT_PAGE = 50


@dataclass(frozen=True, slots=True)
class NewConversation:
    workspace: str
    id: str | None = None
    title: str = ""
    mode: Mode | None = None
    user: str | None = None
    tags: tuple[str, ...] = ()
    starred: bool = False
    pinned: bool = False
    archived: bool = False


@dataclass(frozen=True, slots=True)
class MessageInput:
    role: Role
    content: str = ""
    id: str | None = None
    parts: list[JSONValue] | None = None
    metadata: JSONObject | None = None
    usage: Usage = field(default_factory=Usage)


@dataclass(frozen=True, slots=True)
class ListFilters:
    workspace: str | None = None
    user: str | None = None
    starred: bool | None = None
    pinned: bool | None = None
    archived: bool | None = None
    tag: str | None = None
    text: str | None = None


class ChatService:
    """Conversations and messages as a caller (Principal) may see and change them.

    Callers only ever reach conversations of their tenant, and with a user token only their own in
    the workspaces their token allows; everything else answers `NotFound`, exactly as an id that
    does not exist.
    """

    def __init__(self, stores: StoreRouter, events: EventBus, limits: Limits) -> None:
        self.stores = stores
        self.events = events
        self.limits = limits

    # -- conversations ----------------------------------------------------------------------------

    async def create_conversation(self, p: Principal, spec: NewConversation) -> tuple[Conversation, bool]:
        """Create a conversation; returns it and whether it is new. Creating an id the caller already
        owns in the same workspace returns the existing conversation unchanged (a safe retry)."""
        user = self._owner_for_create(p, spec.user)
        workspace = check_id(spec.workspace, "workspace")
        if not p.may_use_workspace(workspace):
            raise Forbidden(f"this token does not allow workspace {workspace!r}", code="workspace_forbidden")
        conversation = Conversation(
            tenant=p.tenant.id,
            id=check_id(spec.id, "conversation id") if spec.id is not None else str(uuid.uuid4()),
            workspace=workspace,
            user=user,
            mode=spec.mode or p.tenant.settings.default_mode,
            title=check_text(spec.title, "title", max_chars=MAX_TITLE_CHARS),
            tags=check_tags(spec.tags),
            starred=spec.starred,
            pinned=spec.pinned,
            archived=spec.archived,
        )
        store = self.stores.for_mode(conversation.mode)
        try:
            created = await store.create_conversation(
                conversation,
                max_per_tenant=self.limits.max_conversations_per_tenant,
                max_per_user=self.limits.max_conversations_per_user,
            )
        except Conflict:
            existing = await self._visible_or_none(p, conversation.id)
            if existing is not None and existing.workspace == workspace:
                return existing, False
            raise Conflict(
                f"conversation id {conversation.id!r} is taken; choose another or omit it",
                code="conversation_exists",
            ) from None
        await self._publish(EventType.CONVERSATION_CREATED, created)
        return created, True

    def _owner_for_create(self, p: Principal, requested: str | None) -> str:
        if p.user is not None:
            if requested is not None and requested != p.user:
                raise Forbidden(
                    "a user token creates conversations for its own user only", code="user_mismatch"
                )
            return p.user
        if requested is None:
            raise InvalidInput(
                "with a tenant API key, say which user the conversation is for ('user')", code="user_required"
            )
        return check_id(requested, "user")

    async def _visible_or_none(self, p: Principal, conversation_id: str) -> Conversation | None:
        try:
            return await self.get_conversation(p, conversation_id)
        except NotFound:
            return None

    def _holder(self, p: Principal, conversation_id: str) -> Store:
        return self.stores.holder(p.tenant.id, check_id(conversation_id, "conversation id"))

    async def get_conversation(self, p: Principal, conversation_id: str) -> Conversation:
        """The conversation, if the caller may see it; `NotFound` (or `Expired`, to its owner) otherwise."""
        store = self._holder(p, conversation_id)
        return await store.get_conversation(p.tenant.id, conversation_id, p.scope)

    async def load(
        self, p: Principal, conversation_id: str, messages: int = DEFAULT_PAGE
    ) -> tuple[Conversation, MessagePage]:
        """The reload read: the conversation and its latest messages."""
        limit = self._page_size(messages, allow_zero=True)
        store = self._holder(p, conversation_id)
        conversation = await store.get_conversation(p.tenant.id, conversation_id, p.scope)
        if limit == 0 or conversation.message_count == 0:
            return conversation, MessagePage([], has_more=conversation.message_count > 0)
        return conversation, await store.read_messages(conversation, limit=limit)

    async def list_conversations(
        self, p: Principal, filters: ListFilters, *, limit: int = 20, cursor: str | None = None
    ) -> ConversationPage:
        if filters.user is not None and p.user is not None and filters.user != p.user:
            return ConversationPage([], None)
        if filters.workspace is not None:
            check_id(filters.workspace, "workspace")
        if filters.user is not None:
            check_id(filters.user, "user")
        if filters.tag is not None:
            check_text(filters.tag, "tag filter", max_chars=MAX_TAG_CHARS)
        query = ConversationQuery(
            tenant=p.tenant.id,
            user=p.user if p.user is not None else filters.user,
            allowed_workspaces=p.workspaces,
            workspace=filters.workspace,
            starred=filters.starred,
            pinned=filters.pinned,
            archived=filters.archived,
            tag=filters.tag,
            text=check_text(filters.text, "title filter", max_chars=MAX_TITLE_CHARS)
            if filters.text
            else None,
            limit=self._page_size(limit),
            after=decode_cursor(cursor) if cursor else None,
        )
        return await self.stores.durable.list_conversations(query)

    async def update_conversation(
        self,
        p: Principal,
        conversation_id: str,
        patch: ConversationPatch,
        expected_version: int | Literal["*"] | None,
    ) -> Conversation:
        """Apply a metadata change. The caller must say which version it changes (`expected_version`,
        from If-Match) or `*` to overwrite whatever is there; a stale version changes nothing."""
        if expected_version is None:
            raise PreconditionRequired(
                "send 'If-Match: <version>' (the conversation's current version) or 'If-Match: *'",
                code="if_match_required",
            )
        if patch.is_empty():
            raise InvalidInput("the patch changes nothing", code="empty_patch")
        if patch.title is not None:
            check_text(patch.title, "title", max_chars=MAX_TITLE_CHARS)
        if patch.tags is not None:
            patch = ConversationPatch(
                title=patch.title,
                starred=patch.starred,
                pinned=patch.pinned,
                archived=patch.archived,
                tags=check_tags(patch.tags),
            )
        updated = await self._holder(p, conversation_id).update_conversation(
            p.tenant.id,
            conversation_id,
            patch,
            expected_version=None if expected_version == "*" else expected_version,
            scope=p.scope,
        )
        await self._publish(EventType.CONVERSATION_UPDATED, updated)
        return updated

    async def delete_conversation(self, p: Principal, conversation_id: str) -> Conversation:
        store = self._holder(p, conversation_id)
        deleted = await store.delete_conversation(p.tenant.id, conversation_id, p.scope)
        await self._publish(EventType.CONVERSATION_DELETED, deleted)
        return deleted

    # -- messages ---------------------------------------------------------------------------------

    async def append_messages(
        self, p: Principal, conversation_id: str, inputs: Sequence[MessageInput]
    ) -> AppendOutcome:
        """Append one or more messages, all or nothing. Each message id is stored once: a retried
        id answers the stored message unchanged (`created` False)."""
        if not inputs:
            raise InvalidInput("no messages to append", code="empty_batch")
        if len(inputs) > self.limits.max_batch_messages:
            raise TooLarge(
                f"{len(inputs)} messages in one batch; the limit is {self.limits.max_batch_messages}",
                code="batch_too_large",
                limit=self.limits.max_batch_messages,
            )
        messages = [
            check_message(
                NewMessage(
                    id=i.id if i.id is not None else str(uuid.uuid4()),
                    role=i.role,
                    content=i.content,
                    parts=i.parts,
                    metadata=i.metadata,
                    usage=i.usage,
                    status=MessageStatus.COMPLETE,
                ),
                self.limits.max_message_bytes,
            )
            for i in inputs
        ]
        outcome = await self._holder(p, conversation_id).append_messages(
            p.tenant.id,
            conversation_id,
            messages,
            max_messages=self.limits.max_messages_per_conversation,
            policy=self.limits.message_limit_policy,
            scope=p.scope,
        )
        for result in outcome.results:
            if result.created:
                await self.events.publish(self._message_event(outcome.conversation, result.message))
        return outcome

    async def read_messages(
        self,
        p: Principal,
        conversation_id: str,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int = DEFAULT_PAGE,
    ) -> MessagePage:
        for name, seq in (("before", before), ("after", after)):
            if seq is not None and seq < 0:
                raise InvalidInput(f"'{name}' must be a seq >= 0", code="invalid_query")
        size = self._page_size(limit)
        store = self._holder(p, conversation_id)
        conversation = await store.get_conversation(p.tenant.id, conversation_id, p.scope)
        return await store.read_messages(conversation, before=before, after=after, limit=size)

    # -- helpers ----------------------------------------------------------------------------------

    def _page_size(self, limit: int, *, allow_zero: bool = False) -> int:
        low = 0 if allow_zero else 1
        if not low <= limit <= self.limits.max_page_size:
            raise InvalidInput(
                f"page size must be between {low} and {self.limits.max_page_size}", code="invalid_query"
            )
        return limit

    async def _publish(self, kind: EventType, conversation: Conversation) -> None:
        await self.events.publish(
            Event(
                type=kind,
                tenant=conversation.tenant,
                workspace=conversation.workspace,
                user=conversation.user,
                conversation_id=conversation.id,
                version=conversation.version,
                seq=conversation.last_seq,
                data={"conversation": codec.conversation_json(conversation)},
            )
        )

    @staticmethod
    def _message_event(conversation: Conversation, message: Message) -> Event:
        return Event(
            type=EventType.MESSAGE_CREATED,
            tenant=conversation.tenant,
            workspace=conversation.workspace,
            user=conversation.user,
            conversation_id=conversation.id,
            seq=message.seq,
            version=conversation.version,
            data={"message": codec.message_json(message)},
        )


def encode_cursor(cursor: ConversationCursor | None) -> str | None:
    """An opaque, URL-safe token for a position in the conversation list."""
    if cursor is None:
        return None
    raw = json.dumps([int(cursor.pinned), cursor.last_activity_at, cursor.id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(token: str) -> ConversationCursor:
    bad = InvalidInput(
        "the cursor is not one this service issued; start again without it", code="invalid_cursor"
    )
    if len(token) > 512:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        pinned, last_activity_at, conversation_id = json.loads(raw)
    except (ValueError, TypeError, binascii.Error):
        raise bad from None
    if (
        pinned not in (0, 1)
        or not isinstance(last_activity_at, int)
        or isinstance(last_activity_at, bool)
        or not isinstance(conversation_id, str)
        or not ID_RE.match(conversation_id)
        or not 0 <= last_activity_at < 2**62
    ):
        raise bad
    return ConversationCursor(bool(pinned), last_activity_at, conversation_id)
