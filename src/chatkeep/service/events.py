"""Every event the service publishes is built here, so that each carries the same fields however it
came about (a write, a sweep, or a follower's gap filled from the store); and encoded here as the
frame that followers receive."""

from __future__ import annotations

from chatkeep import codec
from chatkeep.codec import Frame
from chatkeep.models import Conversation, Event, EventType, ExpiredConversation, JSONObject, Message
from chatkeep.stores.base import Extension


def _about(
    about: Conversation | ExpiredConversation,
    kind: EventType,
    data: JSONObject,
    *,
    seq: int | None = None,
    version: int | None = None,
) -> Event:
    """An event addressed as the conversation is: its tenant, workspace, owner and id."""
    return Event(kind, about.tenant, about.workspace, about.user, about.id, seq, version, data)


def created_event(conversation: Conversation, message: Message) -> Event:
    """`message.created`: a message was appended (its seq is the event's seq)."""
    data = {"message": codec.message_json(message)}
    return _about(
        conversation, EventType.MESSAGE_CREATED, data, seq=message.seq, version=conversation.version
    )


def delta_event(extension: Extension) -> Event:
    """`message.delta`: a streaming reply grew by `text` at `offset` (in characters)."""
    m = extension.message
    data = {"message_id": m.id, "seq": m.seq, "offset": extension.offset, "text": extension.appended}
    return _about(extension.conversation, EventType.MESSAGE_DELTA, data, seq=m.seq)


def updated_event(conversation: Conversation, message: Message) -> Event:
    """`message.updated`: a message changed other than by a delta (a stream finished or interrupted)."""
    data = {"message": codec.message_json(message)}
    return _about(conversation, EventType.MESSAGE_UPDATED, data, seq=message.seq)


def conversation_event(kind: EventType, conversation: Conversation) -> Event:
    """`conversation.created|updated|deleted`: the whole conversation, with its version."""
    data = {"conversation": codec.conversation_json(conversation)}
    return _about(conversation, kind, data, seq=conversation.last_seq, version=conversation.version)


def expired_event(gone: ExpiredConversation) -> Event:
    """`conversation.expired`: the sweeper removed a conversation whose expiry passed."""
    data: JSONObject = {
        "conversation": {
            "id": gone.id,
            "workspace": gone.workspace,
            "user": gone.user,
            "mode": gone.mode.value,
        }
    }
    return _about(gone, EventType.CONVERSATION_EXPIRED, data)


def event_frame(event: Event) -> Frame:
    """The frame of an event as followers receive it: encoded once, the same bytes for each."""
    return Frame.of(codec.event_json(event))
