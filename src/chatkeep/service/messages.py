"""MessageService: appending messages to a conversation and paging them by seq."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from chatkeep.domain import local_only
from chatkeep.errors import InvalidInput, TooLarge
from chatkeep.models import (
    AppendOutcome,
    Conversation,
    JSONObject,
    JSONValue,
    Message,
    MessagePage,
    MessageStatus,
    Mode,
    NewMessage,
    Role,
    Usage,
)
from chatkeep.service.access import DEFAULT_PAGE, ConversationAccess
from chatkeep.service.auth import Principal
from chatkeep.service.events import created_event
from chatkeep.service.validation import check_id, check_message


@dataclass(frozen=True, slots=True)
class MessageInput:
    role: Role
    content: str = ""
    id: str | None = None
    parts: list[JSONValue] | None = None
    metadata: JSONObject | None = None
    usage: Usage = field(default_factory=Usage)
    # `streaming` opens a reply that text deltas then grow (see StreamService).
    status: MessageStatus = MessageStatus.COMPLETE


class MessageService(ConversationAccess):
    """The messages of the conversations a caller may see. A message is stored once per id, and
    never rewritten by an append; each one stored is published as `message.created`."""

    async def append_messages(
        self, p: Principal, conversation_id: str, inputs: Sequence[MessageInput]
    ) -> AppendOutcome:
        """Append one or more messages, all or nothing. Each message id is stored once: a retried
        id answers the stored message unchanged (`created` False)."""
        check_id(conversation_id, "conversation id")
        if not inputs:
            raise InvalidInput("no messages to append", code="empty_batch")
        if len(inputs) > self.limits.max_batch_messages:
            raise TooLarge(
                f"{len(inputs)} messages in one batch; the limit is {self.limits.max_batch_messages}",
                code="batch_too_large",
                limit=self.limits.max_batch_messages,
            )
        messages = [
            check_message(
                NewMessage(
                    id=i.id if i.id is not None else str(uuid.uuid4()),
                    role=i.role,
                    content=i.content,
                    parts=i.parts,
                    metadata=i.metadata,
                    usage=i.usage,
                    status=_opening_status(i.status),
                ),
                self.limits.max_message_bytes,
            )
            for i in inputs
        ]
        outcome = await self.stores.run(
            p.tenant.id,
            conversation_id,
            lambda s: s.append_messages(
                p.tenant.id,
                conversation_id,
                messages,
                max_messages=self.limits.max_messages_per_conversation,
                policy=self.limits.message_limit_policy,
                scope=p.scope,
            ),
        )
        for result in outcome.results:
            if result.created:
                await self.events.publish(created_event(outcome.conversation, result.message))
        return outcome

    async def read_messages(
        self,
        p: Principal,
        conversation_id: str,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int = DEFAULT_PAGE,
    ) -> MessagePage:
        for name, seq in (("before", before), ("after", after)):
            if seq is not None and seq < 0:
                raise InvalidInput(f"'{name}' must be a seq >= 0", code="invalid_query")
        size = self._page_size(limit)
        conversation = await self.get_conversation(p, conversation_id)
        if conversation.mode is Mode.LOCAL:  # its messages live in the browser: none to page
            raise local_only(conversation.id)
        store = self.stores.for_mode(conversation.mode)
        return await store.read_messages(conversation, before=before, after=after, limit=size)

    async def republish(self, conversation: Conversation, messages: list[Message]) -> None:
        """Messages acknowledged with a provisional seq, now stored at another: `message.created`
        again, with the final seq."""
        for message in messages:
            await self.events.publish(created_event(conversation, message))


def _opening_status(status: MessageStatus) -> MessageStatus:
    if status not in (MessageStatus.COMPLETE, MessageStatus.STREAMING):
        raise InvalidInput("a new message is 'complete' or 'streaming'", code="invalid_status")
    return status
