"""What an import does: the rules `Store.import_conversation` executes on every backend. Pure
functions, no I/O.

An imported conversation is stored exactly as given (its id, timestamps, counters, flags, version
and expiry), with its retained messages: seqs `first_seq .. last_seq`, contiguous, as an export
lists them. Importing it again is a no-op when the stored one has the same content, and a
`Conflict` (code `import_conflict`) otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from chatkeep.domain import errors
from chatkeep.domain.conversations import is_expired
from chatkeep.errors import InvalidInput
from chatkeep.models import Conversation, Message, MessageStatus, Mode


def check_import(conversation: Conversation, messages: Sequence[Message], now: int) -> None:
    """Refuse an import that no store could hold as given (`InvalidInput`, code `invalid_import`,
    naming the field): messages of another conversation, seqs that are not exactly the retained
    range `first_seq .. last_seq`, a message id twice, a trimmed message, messages in a `local`
    conversation, or an expiry already passed."""

    def bad(field: str, detail: str) -> InvalidInput:
        return InvalidInput(f"conversation {conversation.id!r}: {detail}", code="invalid_import", field=field)

    c = conversation
    if c.message_count < 0 or c.last_seq < c.message_count:
        raise bad("message_count", f"holds {c.message_count} messages up to seq {c.last_seq}")
    if c.mode is Mode.LOCAL and messages:
        raise bad("messages", "is local: its messages live in the browser only")
    if len(messages) != c.message_count:
        raise bad("messages", f"has {len(messages)} messages; message_count says {c.message_count}")
    seen: set[str] = set()
    for expected, message in enumerate(messages, start=c.first_seq):
        if message.conversation_id != c.id:
            raise bad("conversation_id", f"message {message.id!r} belongs to {message.conversation_id!r}")
        if message.seq != expected:
            raise bad("seq", f"message {message.id!r} has seq {message.seq}; expected {expected}")
        if message.id in seen:
            raise bad("id", f"message id {message.id!r} appears twice")
        if message.status is MessageStatus.TRIMMED:
            raise bad("status", f"message {message.id!r} is trimmed: only retained messages are imported")
        seen.add(message.id)
    if c.version < 1:
        raise bad("version", f"version {c.version} is below 1")
    if is_expired(c, now):
        raise bad("expires_at", "its expiry has passed")


def _content(conversation: Conversation) -> Conversation:
    """The conversation without what a heartbeat moves (activity and expiry): its content."""
    return replace(conversation, last_activity_at=0, expires_at=None)


def check_reimport(
    stored: Conversation, held: Sequence[Message], conversation: Conversation, messages: Sequence[Message]
) -> bool:
    """The answer to importing `conversation` over a live `stored` one holding `held` messages:
    False (nothing to do) when they have the same content: every field but last activity and
    expiry, and the same messages. `Conflict` (code `import_conflict`) otherwise."""
    if _content(stored) == _content(conversation) and list(held) == list(messages):
        return False
    raise errors.import_conflict(conversation.id)
