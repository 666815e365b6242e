"""The JSON chatkeep sends (built by `codec`) matches what its OpenAPI schemas promise."""

from __future__ import annotations

from chatkeep import codec
from chatkeep.api import schemas
from chatkeep.models import Conversation, Message, MessageStatus, Mode, Role, Usage

CONVERSATION = Conversation(
    tenant="t",
    id="c1",
    workspace="w",
    user="u",
    mode=Mode.EPHEMERAL,
    title="Title",
    created_at=1_700_000_000_123,
    last_activity_at=1_700_000_100_456,
    starred=True,
    pinned=True,
    archived=False,
    tags=("a", "b"),
    message_count=2,
    last_seq=9,
    preview="hello",
    usage=Usage(10, 20),
    version=4,
    ttl_ms=60_000,
    expires_at=1_700_000_160_456,
)
MESSAGE = Message(
    conversation_id="c1",
    id="m1",
    seq=9,
    role=Role.ASSISTANT,
    content="hello",
    created_at=1_700_000_100_456,
    parts=[{"type": "text", "text": "hello"}],
    metadata={"model": "x"},
    usage=Usage(10, 20),
    status=MessageStatus.STREAMING,
)


def test_conversation_and_message_shapes() -> None:
    conversation = codec.conversation_json(CONVERSATION)
    parsed = schemas.Conversation.model_validate(conversation)
    assert set(conversation) == set(
        schemas.Conversation.model_fields
    )  # nothing undocumented, nothing missing
    assert (parsed.version, parsed.usage.output_tokens, parsed.tags) == (4, 20, ["a", "b"])
    assert conversation["created_at"] == "2023-11-14T22:13:20.123Z"
    assert conversation["expires_at"] == "2023-11-14T22:16:00.456Z"
    message = codec.message_json(MESSAGE)
    assert set(message) == set(schemas.Message.model_fields)
    assert schemas.Message.model_validate(message).status is MessageStatus.STREAMING
    plain = codec.conversation_json(
        Conversation(tenant="t", id="c", workspace="w", user="u", mode=Mode.DURABLE)
    )
    assert schemas.Conversation.model_validate(plain).expires_at is None


def test_composite_shapes() -> None:
    with_messages = {**codec.conversation_json(CONVERSATION), "messages": [codec.message_json(MESSAGE)]}
    with_messages["has_more_messages"] = False
    schemas.ConversationWithMessages.model_validate(with_messages)
    schemas.ConversationList.model_validate(
        {"items": [codec.conversation_json(CONVERSATION)], "next_cursor": None}
    )
    schemas.MessageList.model_validate({"messages": [codec.message_json(MESSAGE)], "has_more": True})
    schemas.BatchResult.model_validate(
        {"results": [{"created": True, "message": codec.message_json(MESSAGE)}]}
    )
