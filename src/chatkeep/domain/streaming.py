"""What a delta and a finish do to a streaming reply and its conversation: pure functions, no I/O."""

from __future__ import annotations

from dataclasses import replace

from chatkeep.domain import errors
from chatkeep.domain.appends import PREVIEW_CHARS
from chatkeep.domain.conversations import expiry
from chatkeep.models import Conversation, Message, MessageStatus, Usage


def plan_extend(message: Message, text: str, offset: int | None, max_bytes: int | None) -> tuple[int, str]:
    """Where `text` goes in a streaming message and what part of it is new: (offset, suffix).

    Without `offset` the text goes at the end. With it, text the content already holds at that
    offset is not added again (a retried delta), and only what runs past the end is new; text that
    differs from the content at that offset, or an offset past the end, is an `offset_mismatch`."""
    if message.status is not MessageStatus.STREAMING:
        raise errors.not_streaming(message)
    length = len(message.content)
    if offset is None:
        offset = length
    held = message.content[offset:]
    if offset > length or not (text.startswith(held) or held.startswith(text)):
        raise errors.offset_mismatch(message, offset)
    suffix = text[len(held) :] if len(text) > len(held) else ""
    if max_bytes is not None and suffix and len((message.content + suffix).encode("utf-8")) > max_bytes:
        raise errors.message_too_large(message.id, max_bytes)
    return length, suffix


def finished(message: Message, status: MessageStatus, usage: Usage | None) -> Message | None:
    """The message after `finish_message`, or None when it already was (same status)."""
    if message.status is not MessageStatus.STREAMING:
        if message.status is status:
            return None
        raise errors.not_streaming(message)
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
