"""What an append does to a conversation: idempotency by message id, the next seqs, the message limit
and the trim policy, and what a trimmed message leaves behind. Pure functions, no I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from chatkeep.domain import errors
from chatkeep.domain.conversations import expiry
from chatkeep.models import (
    AppendResult,
    Conversation,
    LimitPolicy,
    Message,
    MessageStatus,
    Mode,
    NewMessage,
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

    def trimmed_seqs(self, before: Conversation) -> range:
        """The seqs this append trims from `before` (the conversation it was planned on)."""
        return range(before.first_seq, self.trim_below if self.trim_below is not None else before.first_seq)


def same_message(stored: Message | NewMessage, new: NewMessage) -> bool:
    """Whether appending `new` under an id that holds `stored` is a retry of the same message: same
    role, content, parts and metadata. A streaming reply grows after it is opened, so a retried
    opening matches when the stored content starts with it. A trimmed message is no longer known
    (only its id, seq, role and time are), so any retry of it matches."""
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
        raise errors.message_id_conflict(stored)
    return stored


def check_batch(messages: Sequence[NewMessage]) -> None:
    """Refuse a batch that names one id twice with different messages (`message_id_conflict`)."""
    first: dict[str, NewMessage] = {}
    for new in messages:
        earlier = first.setdefault(new.id, new)
        if earlier is not new and not same_message(earlier, new):
            raise errors.batch_id_conflict(new.id)


def check_appendable(conversation: Conversation) -> None:
    if conversation.mode is Mode.LOCAL:
        raise errors.local_only(conversation.id)


def trimmed(message: Message) -> Message:
    """What remains of a message after the trim policy dropped it: id, seq, role, time and usage."""
    return replace(message, content="", parts=None, metadata=None, status=MessageStatus.TRIMMED)


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
            raise errors.message_limit(conversation.id, conversation.message_count, max_messages)
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
