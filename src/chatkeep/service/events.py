"""Events the service publishes about messages (conversation events are built in conversations)."""

from __future__ import annotations

from chatkeep import codec
from chatkeep.models import Event, EventType, Message


def updated_event(tenant: str, workspace: str, user: str, message: Message) -> Event:
    """`message.updated`: a message changed other than by a delta (a stream finished or interrupted)."""
    return Event(
        type=EventType.MESSAGE_UPDATED,
        tenant=tenant,
        workspace=workspace,
        user=user,
        conversation_id=message.conversation_id,
        seq=message.seq,
        data={"message": codec.message_json(message)},
    )
