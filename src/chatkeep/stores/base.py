"""The store contracts. Their docstrings are the specification: `tests/stores/test_contract.py`
checks every promise of `Store` against every backend, `tests/stores/test_tenant_contract.py` every
promise of `TenantStore` against every backend that keeps tenants.

A `Store` keeps conversations and messages. It enforces what must be atomic with a write (gapless
seq, idempotency by message id, count limits, version checks) but decides no policy: the service
passes the limits and the policy in. The pure parts of those writes (`plan_append`, `apply_patch`,
`matches`) live in `chatkeep.domain` so every backend computes them identically.

A `TenantStore` keeps tenants. Only the durable backends (memory, SQL) are one as well: the service
keeps its tenants in the durable store, never in the ephemeral one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from chatkeep.models import (
    ANYONE,
    AppendOutcome,
    Conversation,
    ConversationPage,
    ConversationPatch,
    ConversationQuery,
    ExpiredConversation,
    LimitPolicy,
    Message,
    MessagePage,
    MessageStatus,
    NewMessage,
    Scope,
    SearchPage,
    SearchQuery,
    Tenant,
    Usage,
)
from chatkeep.stores.requests import Append, Create, Extend, Finish, Read, Ref, Update
from chatkeep.stores.url import StoreURL


class Store(ABC):
    """Where conversations live. Every method is scoped by tenant: no call ever reads or changes another
    tenant's data, whatever ids it is given.

    Lifecycle: construct (no I/O), `await connect()`, use, `await close()`. Driver failures surface as
    `StoreUnavailable`, never as a driver's own exception.

    Scope: calls that name a conversation take a `scope` (who may reach it: a user or anyone, in
    some workspaces or all). A conversation outside the scope is reported exactly as one that does
    not exist (`NotFound`, never `Expired`) and is left untouched.

    Expiry: a conversation whose `ttl_ms` is set expires `ttl_ms` after its last write (creation,
    append, metadata update) or touch. An expired conversation behaves as gone for every call except
    that lookups raise `Expired` instead of `NotFound`. A conversation whose `ttl_ms` is None never
    expires.
    """

    url: StoreURL
    # True while the store answers from a stand-in (see FallbackStore); shown by /readyz.
    degraded: bool = False

    @abstractmethod
    async def connect(self) -> None:
        """Open connections. Raises `StoreUnavailable` when the server cannot be reached."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections. Safe to call twice or without `connect()`."""

    async def migrate(self) -> None:  # noqa: B027 - stores without a schema have nothing to migrate
        """Bring the schema up to date. Idempotent, and safe when several processes run it at once."""

    @abstractmethod
    async def ping(self) -> None:
        """Return when the backing server answers; raise `StoreUnavailable` otherwise."""

    # -- conversations ----------------------------------------------------------------------------

    async def create_conversation(
        self,
        conversation: Conversation,
        *,
        max_per_tenant: int | None = None,
        max_per_user: int | None = None,
    ) -> Conversation:
        """Store a new conversation and return it as stored.

        The store sets `created_at` and `last_activity_at` to now, `version` to 1, `expires_at` from
        `ttl_ms`, and zeroes the message counters. Raises `Conflict` (code `conversation_exists`) if the
        tenant already has a live conversation with this id (an expired one is replaced). Raises
        `QuotaExceeded` (code `conversation_limit`) if the tenant already holds `max_per_tenant` live
        conversations or the user `max_per_user`; the check and the insert are atomic, so concurrent
        creates never overshoot a limit.
        """
        return await self.create(Create(conversation, max_per_tenant, max_per_user))

    async def create_generated(
        self,
        conversation: Conversation,
        *,
        max_per_tenant: int | None = None,
        max_per_user: int | None = None,
    ) -> Conversation:
        """`create_conversation` for an id the server generated (unguessable, so nobody else can
        hold it). Stores answer both alike, except one that cannot check ids for a while: during an
        outage of its server the FallbackStore accepts these and refuses client-chosen ids."""
        return await self.create(Create(conversation, max_per_tenant, max_per_user, generated=True))

    async def get_conversation(
        self, tenant: str, conversation_id: str, scope: Scope = ANYONE
    ) -> Conversation:
        """The conversation. Raises `NotFound`, or `Expired` if its expiry passed."""
        return await self.get(Ref(tenant, conversation_id, scope))

    @abstractmethod
    async def list_conversations(self, query: ConversationQuery) -> ConversationPage:
        """Live conversations matching every filter of `query`, pinned first, then by last activity
        newest first, then by id descending. Returns at most `query.limit` items, starting strictly
        after `query.after`, and a cursor for the next page (None on the last page). The title filter
        matches a case-insensitive substring."""

    @abstractmethod
    async def count_conversations(self, tenant: str, user: str | None = None) -> int:
        """Number of live conversations of the tenant, or of one user in it."""

    async def update_conversation(
        self,
        tenant: str,
        conversation_id: str,
        patch: ConversationPatch,
        *,
        expected_version: int | None = None,
        scope: Scope = ANYONE,
    ) -> Conversation:
        """Apply `patch` (see `apply_patch`) and return the conversation with `version` increased by
        one. If `expected_version` is given and differs from the stored version, raises
        `VersionMismatch` carrying the current version and changes nothing. Raises `NotFound` or
        `Expired`."""
        return await self.update(Update(Ref(tenant, conversation_id, scope), patch, expected_version))

    async def touch_conversation(
        self, tenant: str, conversation_id: str, scope: Scope = ANYONE
    ) -> Conversation:
        """A heartbeat: set `last_activity_at` to now and slide the expiry window from now. Not a
        metadata change (the version stays). Raises `NotFound` or `Expired`."""
        return await self.touch(Ref(tenant, conversation_id, scope))

    @abstractmethod
    async def sweep_expired(self, *, limit: int = 500, keep_ms: int = 0) -> list[ExpiredConversation]:
        """Remove the messages and data of up to `limit` conversations whose expiry has passed, and
        return them. Each expired conversation is returned by exactly one call, however many
        sweepers run at once. A swept conversation stays known as expired (lookups raise `Expired`)
        until `keep_ms` after its expiry; a sweep then forgets it (lookups raise `NotFound`)."""

    async def delete_conversation(
        self, tenant: str, conversation_id: str, scope: Scope = ANYONE
    ) -> Conversation:
        """Remove the conversation and all its messages; return it as it was. Raises `NotFound` or
        `Expired`."""
        return await self.delete(Ref(tenant, conversation_id, scope))

    def watch_reseq(  # noqa: B027 - most stores never change a seq they acknowledged
        self, listener: Callable[[Conversation, list[Message]], Awaitable[None]]
    ) -> None:
        """Have `listener(conversation, messages)` called with messages stored at another seq than
        their acknowledgement said (a provisional one, see `AppendOutcome.provisional`). Only a
        store that acknowledges writes before its server stores them ever calls it."""

    # -- messages ---------------------------------------------------------------------------------

    async def append_messages(
        self,
        tenant: str,
        conversation_id: str,
        messages: Sequence[NewMessage],
        *,
        max_messages: int | None = None,
        policy: LimitPolicy = LimitPolicy.REJECT,
        scope: Scope = ANYONE,
    ) -> AppendOutcome:
        """Append messages in order, all or nothing, as computed by `plan_append`.

        Each new message gets the next `seq` (strictly increasing, no gap, no repeat, even under
        concurrent appenders) and `created_at` now. A message whose id the conversation already holds
        (or that appears earlier in the same batch) is not stored again: if it is the same message
        (see `same_message`) its result is the stored message unchanged, with `created` False;
        otherwise the whole append raises `Conflict` (code `message_id_conflict`, the stored message
        in `extra["message"]`) and stores nothing. Appending never rewrites the conversation's history.
        Raises `NotFound`, `Expired`, or `QuotaExceeded` (code `message_limit`) when the policy is
        `reject` and the new messages would exceed `max_messages`; with `trim` the oldest messages are
        dropped instead and their seqs are never reused. A conversation of mode `local` keeps no
        messages on the server: appending to it raises `Conflict` (code `local_only`).
        """
        return await self.append(Append(Ref(tenant, conversation_id, scope), messages, max_messages, policy))

    async def extend_message(
        self,
        tenant: str,
        conversation_id: str,
        message_id: str,
        text: str,
        *,
        offset: int | None = None,
        max_bytes: int | None = None,
        scope: Scope = ANYONE,
    ) -> Extension:
        """Add `text` to the content of a message whose status is `streaming`, as `plan_extend`
        decides: at the end, or with `offset` (the content length, in characters, the writer believes
        is stored) idempotently, so a retried delta is not stored twice. Slides the conversation's
        expiry and marks activity. Raises `NotFound` (code `message_not_found` for an unknown message
        id), `Expired`, `Conflict` (codes `not_streaming`, `offset_mismatch`) or `TooLarge`."""
        ref = Ref(tenant, conversation_id, scope)
        return await self.extend(Extend(ref, message_id, text, offset, max_bytes))

    async def finish_message(
        self,
        tenant: str,
        conversation_id: str,
        message_id: str,
        status: MessageStatus,
        *,
        usage: Usage | None = None,
        scope: Scope = ANYONE,
    ) -> Message:
        """End a streaming message as `complete` or `interrupted`, optionally recording its token
        usage (added to the conversation's totals); when it is the latest message its content becomes
        the conversation's preview. Finishing a message already finished with the same status
        returns it unchanged; with another status raises `Conflict` (code `not_streaming`)."""
        return await self.finish(Finish(Ref(tenant, conversation_id, scope), message_id, status, usage))

    @abstractmethod
    async def interrupt_stale_streams(
        self, *, idle_ms: int, limit: int = 500
    ) -> list[tuple[Conversation, Message]]:
        """Mark `interrupted` the streaming messages not extended for `idle_ms` (their writer is gone),
        and return them with their conversations. Each is returned by exactly one call, however many
        sweepers run at once."""

    async def read_messages(
        self,
        conversation: Conversation,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int = 50,
    ) -> MessagePage:
        """A page of the conversation's retained messages in ascending seq order, never reading more
        than the page from storage.

        With `before`, the `limit` messages just below that seq; with `after`, the `limit` messages
        just above it; with both, the first `limit` messages above `after` and below `before`; with
        neither, the latest `limit`. `has_more` is True when retained messages exist beyond the page
        in the direction of travel and within the bounds (older for `before` alone and the latest
        page, newer when `after` is given). `conversation` is as returned by this store; a deleted
        one, or one whose `expires_at` has passed, yields an empty page.
        """
        return await self.read(Read(conversation, before, after, limit))

    # -- what a backend implements: one method a request (see the named methods above) -------------

    @abstractmethod
    async def create(self, request: Create) -> Conversation: ...

    @abstractmethod
    async def get(self, ref: Ref) -> Conversation: ...

    @abstractmethod
    async def update(self, request: Update) -> Conversation: ...

    @abstractmethod
    async def touch(self, ref: Ref) -> Conversation: ...

    @abstractmethod
    async def delete(self, ref: Ref) -> Conversation: ...

    @abstractmethod
    async def append(self, request: Append) -> AppendOutcome: ...

    @abstractmethod
    async def extend(self, request: Extend) -> Extension: ...

    @abstractmethod
    async def finish(self, request: Finish) -> Message: ...

    @abstractmethod
    async def read(self, request: Read) -> MessagePage: ...

    # -- search -----------------------------------------------------------------------------------

    @abstractmethod
    async def search(self, query: SearchQuery) -> SearchPage:
        """Full-text search over the titles and retained message text of the live conversations the
        same fields of a `ConversationQuery` would list (tenant, user, allowed workspaces,
        workspace); a deleted or expired conversation is never found, nor a trimmed message.

        A message or title is a hit when it holds every term of `query.terms` as a whole word
        (see `chatkeep.domain.search`); a conversation yields at most one title hit and one hit per
        message. Hits come in search order (score, highest first, then conversation id, then seq,
        the title's being 0), with the score and snippet `chatkeep.domain.search.hit` computes from
        the stored text. Returns at most `query.limit` hits strictly after `query.after` and a
        cursor for the next page (None on the last page): paging through the results of unchanged
        data yields every hit once.

        A store may bound the work of one call (documented on the store); it then says so with
        `partial` True, and the page ranks what it read.
        """

    # -- import -----------------------------------------------------------------------------------

    @abstractmethod
    async def import_conversation(self, conversation: Conversation, messages: Sequence[Message]) -> bool:
        """Store a conversation exactly as given, all or nothing: its id, owner, mode, timestamps
        (`created_at`, `last_activity_at`, `expires_at`), counters, usage, flags, tags, `ttl_ms` and
        `version`, and its retained `messages` with their seqs, ids, `created_at`, usage and status.
        Returns True when stored.

        `messages` are the seqs `first_seq .. last_seq` in order (see `check_import`, which raises
        `InvalidInput`, code `invalid_import`, for anything else, and for an expiry already passed).
        An imported streaming message counts as last extended at its `created_at`.

        When the tenant already has a live conversation with this id: if it has the same content
        (every field but `last_activity_at` and `expires_at`, which a heartbeat moves, and the same
        retained messages) returns False and changes nothing, so importing twice stores nothing
        twice; otherwise raises `Conflict` (code `import_conflict`) and changes nothing. An expired
        one is replaced. No count limit is applied: the caller checks its quotas first.
        """


class TenantStore(ABC):
    """Where tenants live: their names, API key hashes, token secrets (the current one and the
    previous one during a rotation's overlap) and settings.

    The backends that keep tenants (memory, SQL) are Stores as well, and the tenants share that
    Store's lifecycle: they answer once it is connected (and migrated) and stop with its `close()`.
    Driver failures surface as `StoreUnavailable`.
    """

    @abstractmethod
    async def create_tenant(self, tenant: Tenant) -> None:
        """Store a new tenant. Raises `Conflict` (code `tenant_exists`) if the id is taken."""

    @abstractmethod
    async def get_tenant(self, tenant_id: str) -> Tenant | None:
        """The tenant with this id, or None."""

    @abstractmethod
    async def get_tenant_by_key_hash(self, key_hash: str) -> Tenant | None:
        """The tenant whose API key hashes to `key_hash`, or None."""

    @abstractmethod
    async def list_tenants(self) -> list[Tenant]:
        """All tenants, ordered by id."""

    @abstractmethod
    async def update_tenant(self, tenant: Tenant) -> None:
        """Replace a tenant's name, key hash, token secrets (the current one, the previous one and
        when that stops verifying) and settings; a replaced key hash no longer finds the tenant.
        Raises `NotFound` if absent."""


@dataclass(frozen=True, slots=True)
class Extension:
    """The outcome of `extend_message`: the message and its conversation as stored, and what this
    call added where (`appended` is empty when the text was already there)."""

    conversation: Conversation
    message: Message
    offset: int
    appended: str
