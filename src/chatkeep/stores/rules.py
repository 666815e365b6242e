"""The pure parts of every write: what an append, a patch, a delta, a finish or a create does to a
conversation, computed before a store writes anything, so every backend computes them identically.
No I/O here; `stores/base.py` holds the contract these serve."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from chatkeep.errors import Conflict, QuotaExceeded, TooLarge
from chatkeep.models import (
    AppendResult,
    Conversation,
    ConversationPatch,
    ConversationQuery,
    LimitPolicy,
    Message,
    MessageStatus,
    Mode,
    NewMessage,
    Usage,
)

PREVIEW_CHARS = 120


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
