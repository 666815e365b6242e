"""What a create, a patch, a heartbeat and a list filter do to conversations: pure functions, no I/O."""

from __future__ import annotations

from dataclasses import replace

from chatkeep.domain import errors
from chatkeep.models import Conversation, ConversationPatch, ConversationQuery, Usage


def expiry(ttl_ms: int | None, now: int) -> int | None:
    return None if ttl_ms is None else now + ttl_ms


def is_expired(conversation: Conversation, now: int) -> bool:
    return conversation.expires_at is not None and conversation.expires_at <= now


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


def check_quota(
    tenant_count: int, user_count: int, max_per_tenant: int | None, max_per_user: int | None
) -> None:
    """Raise `QuotaExceeded` if one more conversation would pass a count limit."""
    if max_per_tenant is not None and tenant_count >= max_per_tenant:
        raise errors.conversation_limit("tenant", tenant_count, max_per_tenant)
    if max_per_user is not None and user_count >= max_per_user:
        raise errors.conversation_limit("user", user_count, max_per_user)


def check_version(conversation: Conversation, expected_version: int | None) -> None:
    """Refuse a conditional change of a conversation that moved on (`VersionMismatch`)."""
    if expected_version is not None and conversation.version != expected_version:
        raise errors.version_mismatch(conversation.id, conversation.version)


def apply_patch(
    conversation: Conversation, patch: ConversationPatch, now: int, expected_version: int | None = None
) -> Conversation:
    """The conversation after a metadata update: changed fields, version + 1, expiry slid forward
    (under the new window when the patch sets one). Last activity is not changed: starring or
    renaming is not conversation activity. With `expected_version`, only that version is changed."""
    check_version(conversation, expected_version)
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


def page_bounds(
    conversation: Conversation, before: int | None, after: int | None, limit: int
) -> tuple[range, bool]:
    """The seqs of a page of retained messages (see `Store.read_messages`) and whether more lie
    beyond it in the direction of travel."""
    low, high = conversation.first_seq, conversation.last_seq  # retained seqs, inclusive
    if after is not None:
        ceiling = high if before is None else min(high, before - 1)
        start = max(low, after + 1)
        stop = min(ceiling, start + limit - 1)
        return range(start, stop + 1), stop < ceiling
    stop = high if before is None else min(high, before - 1)
    start = max(low, stop - limit + 1)
    return range(start, stop + 1), start > low
