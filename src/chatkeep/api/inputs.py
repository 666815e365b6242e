"""Request bodies (api/schemas.py) as the service's inputs; shared by the REST routes and the socket."""

from __future__ import annotations

from chatkeep.api.schemas import MessageCreate, UsageIn
from chatkeep.models import MessageStatus, Usage
from chatkeep.service import MessageInput


def usage_of(usage: UsageIn | None) -> Usage | None:
    return Usage(usage.input_tokens, usage.output_tokens) if usage is not None else None


def message_input(body: MessageCreate) -> MessageInput:
    return MessageInput(
        role=body.role,
        content=body.content,
        id=body.id,
        parts=body.parts,
        metadata=body.metadata,
        usage=usage_of(body.usage) or Usage(),
        status=MessageStatus(body.status),
    )
