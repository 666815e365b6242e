"""Every event the service publishes is built here, so that each carries the same fields however it
came about (a write, a sweep, or a follower's gap filled from the store); and encoded here as the
frame that followers receive."""

from __future__ import annotations

from chatkeep import codec
from chatkeep.codec import Frame
from chatkeep.models import Conversation, Event, EventType, ExpiredConversation, Message
from chatkeep.stores.base import Extension


def created_event(conversation: Conversation, message: Message) -> Event:
    """`message.created`: a message was appended (its seq is the event's seq)."""
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


def delta_event(extension: Extension) -> Event:
    """`message.delta`: a streaming reply grew by `text` at `offset` (in characters)."""
    c, message = extension.conversation, extension.message
    return Event(
        type=EventType.MESSAGE_DELTA,
        tenant=c.tenant,
        workspace=c.workspace,
        user=c.user,
        conversation_id=c.id,
        seq=message.seq,
        data={
            "message_id": message.id,
            "seq": message.seq,
            "offset": extension.offset,
            "text": extension.appended,
        },
    )


def updated_event(conversation: Conversation, message: Message) -> Event:
    """`message.updated`: a message changed other than by a delta (a stream finished or interrupted)."""
    return Event(
        type=EventType.MESSAGE_UPDATED,
        tenant=conversation.tenant,
        workspace=conversation.workspace,
        user=conversation.user,
        conversation_id=message.conversation_id,
        seq=message.seq,
        data={"message": codec.message_json(message)},
    )


def conversation_event(kind: EventType, conversation: Conversation) -> Event:
    """`conversation.created|updated|deleted`: the whole conversation, with its version."""
    return Event(
        type=kind,
        tenant=conversation.tenant,
        workspace=conversation.workspace,
        user=conversation.user,
        conversation_id=conversation.id,
        version=conversation.version,
        seq=conversation.last_seq,
        data={"conversation": codec.conversation_json(conversation)},
    )


def expired_event(gone: ExpiredConversation) -> Event:
    """`conversation.expired`: the sweeper removed a conversation whose expiry passed."""
    return Event(
        type=EventType.CONVERSATION_EXPIRED,
        tenant=gone.tenant,
        workspace=gone.workspace,
        user=gone.user,
        conversation_id=gone.id,
        data={
            "conversation": {
                "id": gone.id,
                "workspace": gone.workspace,
                "user": gone.user,
                "mode": gone.mode.value,
            }
        },
    )


def event_frame(event: Event) -> Frame:
    """The frame of an event as followers receive it: encoded once, the same bytes for each."""
    return Frame.of(codec.event_json(event))
