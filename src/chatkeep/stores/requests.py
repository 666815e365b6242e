"""The requests a store carries out: one value per operation on a conversation, holding all its
arguments. Callers use the named methods of `Store` (`append_messages(...)` and the rest), which
build these; a backend implements one method a request (`append(Append)` and the rest), and a
wrapper such as the FallbackStore passes a request on whole instead of restating its arguments."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from chatkeep.models import (
    ANYONE,
    Conversation,
    ConversationPatch,
    LimitPolicy,
    MessageStatus,
    NewMessage,
    Scope,
    Usage,
)


@dataclass(frozen=True, slots=True)
class Ref:
    """One conversation as a caller reaches it: outside `scope` it is reported as not found."""

    tenant: str
    conversation_id: str
    scope: Scope = ANYONE

    @property
    def key(self) -> tuple[str, str]:
        return (self.tenant, self.conversation_id)


@dataclass(frozen=True, slots=True)
class Create:
    conversation: Conversation
    max_per_tenant: int | None = None
    max_per_user: int | None = None
    # The server generated the id (unguessable): see `Store.create_generated`.
    generated: bool = False


@dataclass(frozen=True, slots=True)
class Update:
    ref: Ref
    patch: ConversationPatch
    expected_version: int | None = None


@dataclass(frozen=True, slots=True)
class Append:
    ref: Ref
    messages: Sequence[NewMessage]
    max_messages: int | None = None
    policy: LimitPolicy = LimitPolicy.REJECT


@dataclass(frozen=True, slots=True)
class Extend:
    ref: Ref
    message_id: str
    text: str
    offset: int | None = None
    max_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class Finish:
    ref: Ref
    message_id: str
    status: MessageStatus
    usage: Usage | None = None


@dataclass(frozen=True, slots=True)
class Read:
    conversation: Conversation
    before: int | None = None
    after: int | None = None
    limit: int = 50
