"""ConversationService: creating, listing, reading, changing and deleting conversations."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Literal

from chatkeep.errors import Conflict, Forbidden, InvalidInput, NotFound, PreconditionRequired
from chatkeep.models import (
    TTL,
    Conversation,
    ConversationPage,
    ConversationPatch,
    ConversationQuery,
    EventType,
    MessagePage,
    Mode,
)
from chatkeep.service.access import DEFAULT_PAGE, ConversationAccess
from chatkeep.service.auth import Principal
from chatkeep.service.cursors import decode_cursor
from chatkeep.service.events import conversation_event
from chatkeep.service.ids import check_random_id
from chatkeep.service.validation import (
    MAX_TAG_CHARS,
    MAX_TITLE_CHARS,
    check_id,
    check_tags,
    check_text,
)
from chatkeep.stores.base import Store


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
class ListFilters:
    workspace: str | None = None
    user: str | None = None
    starred: bool | None = None
    pinned: bool | None = None
    archived: bool | None = None
    tag: str | None = None
    text: str | None = None


class ConversationService(ConversationAccess):
    """Conversations as a caller may create and change them; each change is published as a
    `conversation.*` event."""

    async def create_conversation(self, p: Principal, spec: NewConversation) -> tuple[Conversation, bool]:
        """Create a conversation in the store of its mode (the tenant's default mode when none is
        given); returns it and whether it is new. Creating an id the caller already owns in the same
        workspace returns the existing conversation unchanged (a safe retry)."""
        user = self._owner_for_create(p, spec.user)
        workspace = check_id(spec.workspace, "workspace")
        if not p.may_use_workspace(workspace):
            raise Forbidden(f"this token does not allow workspace {workspace!r}", code="workspace_forbidden")
        mode = spec.mode or p.tenant.settings.default_mode
        conversation = Conversation(
            tenant=p.tenant.id,
            id=self._id_for_create(p, spec.id),
            workspace=workspace,
            user=user,
            mode=mode,
            title=check_text(spec.title, "title", max_chars=MAX_TITLE_CHARS),
            tags=check_tags(spec.tags),
            starred=spec.starred,
            pinned=spec.pinned,
            archived=spec.archived,
            ttl_ms=self.lifetimes.ttl_ms(p.tenant, mode, spec.pinned),
        )
        store = self.stores.for_mode(mode)
        try:
            # a generated id is unguessable: no other store holds it, nor need be asked (one may be down)
            if spec.id is not None and await self.stores.held_elsewhere(p.tenant.id, conversation.id, store):
                raise Conflict("taken", code="conversation_exists")
            create = store.create_conversation if spec.id is not None else store.create_generated
            created = await create(
                conversation,
                max_per_tenant=await self._room(
                    self.limits.max_conversations_per_tenant, p.tenant.id, None, store
                ),
                max_per_user=await self._room(
                    self.limits.max_conversations_per_user, p.tenant.id, user, store
                ),
            )
        except Conflict:
            existing = await self._visible_or_none(p, conversation.id)
            if existing is not None and _same_create(existing, conversation, spec.mode):
                return existing, False
            raise Conflict(
                f"conversation id {conversation.id!r} is taken; choose another or omit it",
                code="conversation_exists",
            ) from None
        self.stores.remember(p.tenant.id, created.id, store)
        await self._publish(EventType.CONVERSATION_CREATED, created)
        return created, True

    async def _room(self, limit: int | None, tenant: str, user: str | None, store: Store) -> int | None:
        """A count limit as the target store must apply it: less what the other stores hold."""
        if limit is None:
            return None
        return max(0, limit - await self.stores.count(tenant, user, besides=store))

    @staticmethod
    def _id_for_create(p: Principal, requested: str | None) -> str:
        if requested is None:
            return str(uuid.uuid4())
        check_id(requested, "conversation id")
        return requested if p.is_tenant_key else check_random_id(requested)

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

    async def load(
        self, p: Principal, conversation_id: str, messages: int = DEFAULT_PAGE
    ) -> tuple[Conversation, MessagePage]:
        """The reload read: the conversation and its latest messages."""
        limit = self._page_size(messages, allow_zero=True)
        conversation = await self.get_conversation(p, conversation_id)
        if limit == 0 or conversation.message_count == 0:
            return conversation, MessagePage([], has_more=conversation.message_count > 0)
        store = self.stores.for_mode(conversation.mode)
        return conversation, await store.read_messages(conversation, limit=limit)

    async def list_conversations(
        self, p: Principal, filters: ListFilters, *, limit: int = 20, cursor: str | None = None
    ) -> ConversationPage:
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
            after=decode_cursor(cursor) if cursor is not None else None,
        )
        if filters.user is not None and p.user is not None and filters.user != p.user:
            return ConversationPage([], None)  # checked like any other query, and nothing to see
        return await self.stores.list(query)

    async def update_conversation(
        self,
        p: Principal,
        conversation_id: str,
        patch: ConversationPatch,
        expected_version: int | Literal["*"] | None,
        *,
        mode: Mode | None = None,
    ) -> Conversation:
        """Apply a metadata change. The caller must say which version it changes (`expected_version`,
        from If-Match) or `*` to overwrite whatever is there; a stale version changes nothing. The
        persistence mode is fixed at creation: asking for another one is a conflict."""
        if expected_version is None:
            raise PreconditionRequired(
                "send 'If-Match: <version>' (the conversation's current version) or 'If-Match: *'",
                code="if_match_required",
            )
        if patch.is_empty() and mode is None:
            raise InvalidInput("the patch changes nothing", code="empty_patch")
        if patch.title is not None:
            check_text(patch.title, "title", max_chars=MAX_TITLE_CHARS)
        if patch.tags is not None:
            patch = replace(patch, tags=check_tags(patch.tags))
        if mode is not None or patch.pinned is not None:
            current = await self.get_conversation(p, conversation_id)
            if mode is not None and mode is not current.mode:
                raise Conflict(
                    f"conversation {conversation_id!r} is {current.mode.value}; a persistence mode is fixed "
                    "when a conversation is created (create a new one instead)",
                    code="persistence_immutable",
                    mode=current.mode.value,
                )
            if patch.pinned is not None:  # pinning may lift or restore the expiry
                patch = replace(patch, ttl=TTL(self.lifetimes.ttl_ms(p.tenant, current.mode, patch.pinned)))
            if patch.is_empty():
                return current
        updated = await self.stores.run(
            p.tenant.id,
            conversation_id,
            lambda s: s.update_conversation(
                p.tenant.id,
                conversation_id,
                patch,
                expected_version=None if expected_version == "*" else expected_version,
                scope=p.scope,
            ),
        )
        await self._publish(EventType.CONVERSATION_UPDATED, updated)
        return updated

    async def delete_conversation(self, p: Principal, conversation_id: str) -> Conversation:
        check_id(conversation_id, "conversation id")
        deleted = await self.stores.run(
            p.tenant.id,
            conversation_id,
            lambda s: s.delete_conversation(p.tenant.id, conversation_id, p.scope),
        )
        self.stores.forget(p.tenant.id, conversation_id)
        await self._publish(EventType.CONVERSATION_DELETED, deleted)
        return deleted

    async def heartbeat(self, p: Principal, conversation_id: str) -> Conversation:
        """The page is still open: slide the expiry from now and mark activity."""
        check_id(conversation_id, "conversation id")
        return await self.stores.run(
            p.tenant.id,
            conversation_id,
            lambda s: s.touch_conversation(p.tenant.id, conversation_id, p.scope),
        )

    async def _publish(self, kind: EventType, conversation: Conversation) -> None:
        await self.events.publish(conversation_event(kind, conversation))


def _same_create(existing: Conversation, wanted: Conversation, mode: Mode | None) -> bool:
    """Whether a create of an id that exists is a retry of the one that made it: same workspace and
    owner, and no other persistence mode asked for. Anything else is a different request (409)."""
    return (
        existing.workspace == wanted.workspace
        and existing.user == wanted.user
        and (mode is None or mode is existing.mode)
    )
