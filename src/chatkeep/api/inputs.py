"""Request bodies (api/schemas.py) as the service's inputs; shared by the REST routes and the socket.

A body has the fields of the input it becomes, under the same names: the input takes them all, those
whose types differ converted."""

from __future__ import annotations

from chatkeep.api.schemas import ConversationCreate, MessageCreate, UsageIn
from chatkeep.models import MessageStatus, Usage
from chatkeep.service import MessageInput, NewConversation


def usage_of(usage: UsageIn | None) -> Usage | None:
    return Usage(usage.input_tokens, usage.output_tokens) if usage is not None else None


def conversation_input(body: ConversationCreate) -> NewConversation:
    return NewConversation(**dict(body, tags=tuple(body.tags)))


def message_input(body: MessageCreate) -> MessageInput:
    usage = usage_of(body.usage) or Usage()
    return MessageInput(**dict(body, usage=usage, status=MessageStatus(body.status)))
