"""The client reads answers by its dataclasses' field types: a missing key of a value that may be null
reads as null, one with a default keeps it, and a missing required key is a KeyError."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chatkeep.client.types import Conversation, Heartbeat, Message, parse
from chatkeep.models import MessageStatus, Role, Usage

MESSAGE = {
    "id": "m1",
    "conversation_id": "c1",
    "seq": 3,
    "role": "assistant",
    "content": "hello",
    "status": "complete",
    "created_at": "2026-01-02T03:04:05.678Z",
}


def test_a_message_without_its_optional_keys_reads_them_as_null_zero_and_default() -> None:
    message = parse(Message, MESSAGE)
    assert message == Message(
        id="m1",
        conversation_id="c1",
        seq=3,
        role=Role.ASSISTANT,
        content="hello",
        parts=None,
        metadata=None,
        usage=Usage(0, 0),
        status=MessageStatus.COMPLETE,
        created_at=datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
        provisional=False,
    )


def test_present_keys_are_read_by_their_types() -> None:
    full = {
        **MESSAGE,
        "parts": [{"t": 1}],
        "usage": {"input_tokens": 2, "output_tokens": 5},
        "provisional": True,
    }
    message = parse(Message, full)
    assert (message.parts, message.usage, message.provisional) == ([{"t": 1}], Usage(2, 5), True)
    beat = parse(Heartbeat, {"id": "c1", "last_activity_at": "2026-01-02T03:04:05Z"})
    assert beat.expires_at is None


@pytest.mark.parametrize("key", ["id", "seq", "role", "status", "created_at"])
def test_a_missing_required_key_is_a_key_error(key: str) -> None:
    with pytest.raises(KeyError) as raised:
        parse(Message, {k: v for k, v in MESSAGE.items() if k != key})
    assert raised.value.args == (key,)


def test_a_conversation_needs_its_required_keys_but_not_expiry_or_usage() -> None:
    conversation = {
        "id": "c1",
        "workspace": "w",
        "user": "u",
        "title": "",
        "mode": "durable",
        "created_at": "2026-01-02T03:04:05Z",
        "last_activity_at": "2026-01-02T03:04:05Z",
        "starred": False,
        "pinned": True,
        "archived": False,
        "tags": ["a"],
        "message_count": 0,
        "last_seq": 0,
        "last_message_preview": "",
        "version": 1,
    }
    parsed = parse(Conversation, conversation)
    assert (parsed.expires_at, parsed.usage, parsed.tags, parsed.pinned) == (None, Usage(0, 0), ("a",), True)
    with pytest.raises(KeyError):
        parse(Conversation, {k: v for k, v in conversation.items() if k != "version"})
