"""The Store contract. Its docstrings are the specification; `tests/stores/test_contract.py` checks
every promise made here against every backend.

A store keeps tenants, conversations and messages. It enforces what must be atomic with a write
(gapless seq, idempotency by message id, count limits, version checks) but decides no policy: the
service passes the limits and the policy in. The pure parts of those writes (`plan_append`,
`apply_patch`, `matches`) live in this module so every backend computes them identically.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from chatkeep.errors import Conflict, QuotaExceeded, TooLarge
from chatkeep.models import (
    ANYONE,
    AppendOutcome,
    AppendResult,
    Conversation,
    ConversationPage,
    ConversationPatch,
    ConversationQuery,
    ExpiredConversation,
    LimitPolicy,
    Message,
    MessagePage,
    MessageStatus,
    Mode,
    NewMessage,
    Scope,
    Tenant,
    Usage,
)
from chatkeep.stores.url import StoreURL

PREVIEW_CHARS = 120


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

    # -- tenants ----------------------------------------------------------------------------------

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
        """Replace a tenant's name, key hash, secret and settings. Raises `NotFound` if absent."""

    # -- conversations ----------------------------------------------------------------------------

    @abstractmethod
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
        return await self.create_conversation(
            conversation, max_per_tenant=max_per_tenant, max_per_user=max_per_user
        )

    @abstractmethod
    async def get_conversation(
        self, tenant: str, conversation_id: str, scope: Scope = ANYONE
    ) -> Conversation:
        """The conversation. Raises `NotFound`, or `Expired` if its expiry passed."""

    @abstractmethod
    async def list_conversations(self, query: ConversationQuery) -> ConversationPage:
        """Live conversations matching every filter of `query`, pinned first, then by last activity
        newest first, then by id descending. Returns at most `query.limit` items, starting strictly
        after `query.after`, and a cursor for the next page (None on the last page). The title filter
        matches a case-insensitive substring."""

    @abstractmethod
    async def count_conversations(self, tenant: str, user: str | None = None) -> int:
        """Number of live conversations of the tenant, or of one user in it."""

    @abstractmethod
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

    @abstractmethod
    async def touch_conversation(
        self, tenant: str, conversation_id: str, scope: Scope = ANYONE
    ) -> Conversation:
        """A heartbeat: set `last_activity_at` to now and slide the expiry window from now. Not a
        metadata change (the version stays). Raises `NotFound` or `Expired`."""

    @abstractmethod
    async def sweep_expired(self, *, limit: int = 500, keep_ms: int = 0) -> list[ExpiredConversation]:
        """Remove the messages and data of up to `limit` conversations whose expiry has passed, and
        return them. Each expired conversation is returned by exactly one call, however many
        sweepers run at once. A swept conversation stays known as expired (lookups raise `Expired`)
        until `keep_ms` after its expiry; a sweep then forgets it (lookups raise `NotFound`)."""

    @abstractmethod
    async def delete_conversation(
        self, tenant: str, conversation_id: str, scope: Scope = ANYONE
    ) -> Conversation:
        """Remove the conversation and all its messages; return it as it was. Raises `NotFound` or
        `Expired`."""

    def watch_reseq(  # noqa: B027 - most stores never change a seq they acknowledged
        self, listener: Callable[[Conversation, list[Message]], Awaitable[None]]
    ) -> None:
        """Have `listener(conversation, messages)` called with messages stored at another seq than
        their acknowledgement said (a provisional one, see `AppendOutcome.provisional`). Only a
        store that acknowledges writes before its server stores them ever calls it."""

    # -- messages ---------------------------------------------------------------------------------

    @abstractmethod
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

    @abstractmethod
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

    @abstractmethod
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

    @abstractmethod
    async def interrupt_stale_streams(
        self, *, idle_ms: int, limit: int = 500
    ) -> list[tuple[Conversation, Message]]:
        """Mark `interrupted` the streaming messages not extended for `idle_ms` (their writer is gone),
        and return them with their conversations. Each is returned by exactly one call, however many
        sweepers run at once."""

    @abstractmethod
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
        one yields an empty page.
        """


@dataclass(frozen=True, slots=True)
class Extension:
    """The outcome of `extend_message`: the message and its conversation as stored, and what this
    call added where (`appended` is empty when the text was already there)."""

    conversation: Conversation
    message: Message
    offset: int
    appended: str


@dataclass(frozen=True, slots=True)
class AppendPlan:
    """What an append does, computed before a store writes anything."""

    results: list[AppendResult]
    inserts: list[Message]
    # Retained messages with seq below this are to be trimmed; None when nothing is trimmed.
    trim_below: int | None
    conversation: Conversation


def expiry(ttl_ms: int | None, now: int) -> int | None:
    return None if ttl_ms is None else now + ttl_ms


def is_expired(conversation: Conversation, now: int) -> bool:
    return conversation.expires_at is not None and conversation.expires_at <= now


def local_only(conversation_id: str) -> Conflict:
    return Conflict(
        f"conversation {conversation_id!r} is local: its messages live in the browser only", code="local_only"
    )


def same_message(stored: Message | NewMessage, new: NewMessage) -> bool:
    """Whether appending `new` under an id that holds `stored` is a retry of the same message: same
    role, content, parts and metadata. A streaming reply grows after it is opened, so a retried
    opening matches when the stored content starts with it. A trimmed message is no longer known
    (only its id and seq are), so any retry of it matches."""
    if stored.status is MessageStatus.TRIMMED:
        return True
    if (stored.role, stored.parts, stored.metadata) != (new.role, new.parts, new.metadata):
        return False
    if new.status is MessageStatus.STREAMING:
        return stored.content.startswith(new.content)
    return stored.content == new.content


def check_replay(stored: Message, new: NewMessage) -> Message:
    """`stored`, when `new` is a retry of it; `Conflict` (code `message_id_conflict`) otherwise."""
    if not same_message(stored, new):
        raise Conflict(
            f"message id {new.id!r} is already stored with other content; a retry must send the same "
            "message, and a new message needs a new id",
            code="message_id_conflict",
            message=stored,
        )
    return stored


def check_batch(messages: Sequence[NewMessage]) -> None:
    """Refuse a batch that names one id twice with different messages (`message_id_conflict`)."""
    first: dict[str, NewMessage] = {}
    for new in messages:
        earlier = first.setdefault(new.id, new)
        if earlier is not new and not same_message(earlier, new):
            raise Conflict(
                f"message id {new.id!r} appears twice in this batch with different content",
                code="message_id_conflict",
            )


def check_appendable(conversation: Conversation) -> None:
    if conversation.mode is Mode.LOCAL:
        raise local_only(conversation.id)


def plan_append(
    conversation: Conversation,
    existing: Mapping[str, Message],
    messages: Sequence[NewMessage],
    now: int,
    *,
    max_messages: int | None,
    policy: LimitPolicy,
) -> AppendPlan:
    """Dedupe by id, assign seqs, apply the message limit and compute the conversation afterwards.

    `existing` maps the ids among `messages` that the conversation already holds to their stored
    messages (trimmed ones included).
    """
    check_appendable(conversation)
    check_batch(messages)
    seen: dict[str, Message] = dict(existing)
    results: list[AppendResult] = []
    inserts: list[Message] = []
    seq = conversation.last_seq
    usage = conversation.usage
    for new in messages:
        prior = seen.get(new.id)
        if prior is not None:
            results.append(AppendResult(check_replay(prior, new), created=False))
            continue
        seq += 1
        message = Message(
            conversation_id=conversation.id,
            id=new.id,
            seq=seq,
            role=new.role,
            content=new.content,
            created_at=now,
            parts=new.parts,
            metadata=new.metadata,
            usage=new.usage,
            status=new.status,
        )
        seen[new.id] = message
        inserts.append(message)
        results.append(AppendResult(message, created=True))
        usage = usage + new.usage
    if not inserts:
        return AppendPlan(results, [], None, conversation)

    count = conversation.message_count + len(inserts)
    trim_below = None
    if max_messages is not None and count > max_messages:
        if policy is LimitPolicy.REJECT or len(inserts) > max_messages:
            raise QuotaExceeded(
                f"conversation {conversation.id!r} holds {conversation.message_count} messages; "
                f"the limit is {max_messages}",
                code="message_limit",
                limit=max_messages,
            )
        trim_below = conversation.first_seq + (count - max_messages)
        count = max_messages
    after = replace(
        conversation,
        last_seq=seq,
        message_count=count,
        last_activity_at=now,
        preview=inserts[-1].content[:PREVIEW_CHARS],
        usage=usage,
        expires_at=expiry(conversation.ttl_ms, now),
    )
    return AppendPlan(results, inserts, trim_below, after)


def plan_extend(message: Message, text: str, offset: int | None, max_bytes: int | None) -> tuple[int, str]:
    """Where `text` goes in a streaming message and what part of it is new: (offset, suffix).

    Without `offset` the text goes at the end. With it, text the content already holds at that
    offset is not added again (a retried delta), and only what runs past the end is new; text that
    differs from the content at that offset, or an offset past the end, is an `offset_mismatch`."""
    if message.status is not MessageStatus.STREAMING:
        raise Conflict(
            f"message {message.id!r} is {message.status.value}, not streaming",
            code="not_streaming",
            message_status=message.status.value,
        )
    length = len(message.content)
    if offset is None:
        offset = length
    held = message.content[offset:]
    if offset > length or not (text.startswith(held) or held.startswith(text)):
        raise Conflict(
            f"message {message.id!r} holds {length} characters; "
            f"this delta does not continue them at {offset}",
            code="offset_mismatch",
            length=length,
        )
    suffix = text[len(held) :] if len(text) > len(held) else ""
    if max_bytes is not None and suffix and len((message.content + suffix).encode("utf-8")) > max_bytes:
        raise TooLarge(
            f"message {message.id!r} would exceed {max_bytes} bytes",
            code="message_too_large",
            limit=max_bytes,
        )
    return length, suffix


def finished(message: Message, status: MessageStatus, usage: Usage | None) -> Message | None:
    """The message after `finish_message`, or None when it already was (same status)."""
    if message.status is not MessageStatus.STREAMING:
        if message.status is status:
            return None
        raise Conflict(
            f"message {message.id!r} is {message.status.value}, not streaming",
            code="not_streaming",
            message_status=message.status.value,
        )
    return replace(message, status=status, usage=usage if usage is not None else message.usage)


def after_extend(conversation: Conversation, message: Message, now: int) -> Conversation:
    """The conversation after a delta: activity now, expiry slid, and the preview growing with the
    reply when it is the latest message."""
    preview = (
        message.content[:PREVIEW_CHARS] if message.seq == conversation.last_seq else conversation.preview
    )
    return replace(
        conversation, last_activity_at=now, expires_at=expiry(conversation.ttl_ms, now), preview=preview
    )


def after_finish(conversation: Conversation, before: Message, after: Message, now: int) -> Conversation:
    """The conversation after a streaming message ended: its final usage counted in the totals."""
    usage = Usage(
        conversation.usage.input_tokens + after.usage.input_tokens - before.usage.input_tokens,
        conversation.usage.output_tokens + after.usage.output_tokens - before.usage.output_tokens,
    )
    return replace(after_extend(conversation, after, now), usage=usage)


def trimmed(message: Message) -> Message:
    """What remains of a message after the trim policy dropped it: id and seq only."""
    return replace(message, content="", parts=None, metadata=None, status=MessageStatus.TRIMMED)


def apply_patch(conversation: Conversation, patch: ConversationPatch, now: int) -> Conversation:
    """The conversation after a metadata update: changed fields, version + 1, expiry slid forward
    (under the new window when the patch sets one). Last activity is not changed: starring or
    renaming is not conversation activity."""
    changes: dict[str, object] = {
        name: getattr(patch, name)
        for name in patch.__slots__
        if name != "ttl" and getattr(patch, name) is not None
    }
    ttl_ms = conversation.ttl_ms if patch.ttl is None else patch.ttl.ms
    return replace(
        conversation,
        **changes,  # type: ignore[arg-type]
        ttl_ms=ttl_ms,
        version=conversation.version + 1,
        expires_at=expiry(ttl_ms, now),
    )


def touched(conversation: Conversation, now: int) -> Conversation:
    """The conversation after a heartbeat."""
    return replace(conversation, last_activity_at=now, expires_at=expiry(conversation.ttl_ms, now))


def fold(text: str) -> str:
    """Case folding used by the title filter, identical in every store."""
    return text.casefold()


def matches(conversation: Conversation, query: ConversationQuery) -> bool:
    """Whether a conversation passes every filter of `query` (the cursor aside)."""
    c, q = conversation, query
    return (
        c.tenant == q.tenant
        and (q.user is None or c.user == q.user)
        and (q.allowed_workspaces is None or c.workspace in q.allowed_workspaces)
        and (q.workspace is None or c.workspace == q.workspace)
        and (q.starred is None or c.starred == q.starred)
        and (q.pinned is None or c.pinned == q.pinned)
        and (q.archived is None or c.archived == q.archived)
        and (q.tag is None or q.tag in c.tags)
        and (q.text is None or fold(q.text) in fold(c.title))
    )


def check_quota(
    tenant_count: int, user_count: int, max_per_tenant: int | None, max_per_user: int | None
) -> None:
    """Raise `QuotaExceeded` if one more conversation would pass a count limit."""
    if max_per_tenant is not None and tenant_count >= max_per_tenant:
        raise QuotaExceeded(
            f"the tenant holds {tenant_count} conversations; the limit is {max_per_tenant}",
            code="conversation_limit",
            limit=max_per_tenant,
        )
    if max_per_user is not None and user_count >= max_per_user:
        raise QuotaExceeded(
            f"the user holds {user_count} conversations; the limit is {max_per_user}",
            code="conversation_limit",
            limit=max_per_user,
        )


def fresh_conversation(conversation: Conversation, now: int) -> Conversation:
    """A conversation as `create_conversation` stores it."""
    return replace(
        conversation,
        created_at=now,
        last_activity_at=now,
        message_count=0,
        last_seq=0,
        preview="",
        usage=Usage(),
        version=1,
        expires_at=expiry(conversation.ttl_ms, now),
    )
