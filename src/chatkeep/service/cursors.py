"""Opaque cursors for the conversation list."""

from __future__ import annotations

import base64
import binascii
import json

from chatkeep.errors import InvalidInput
from chatkeep.models import ConversationCursor, is_id


def encode_cursor(cursor: ConversationCursor | None) -> str | None:
    """An opaque, URL-safe token for a position in the conversation list."""
    if cursor is None:
        return None
    raw = json.dumps([int(cursor.pinned), cursor.last_activity_at, cursor.id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(token: str) -> ConversationCursor:
    bad = InvalidInput(
        "the cursor is not one this service issued; start again without it", code="invalid_cursor"
    )
    if len(token) > 512:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        pinned, last_activity_at, conversation_id = json.loads(raw)
    except (ValueError, TypeError, binascii.Error):
        raise bad from None
    if (
        pinned not in (0, 1)
        or not isinstance(last_activity_at, int)
        or isinstance(last_activity_at, bool)
        or not isinstance(conversation_id, str)
        or not is_id(conversation_id)
        or not 0 <= last_activity_at < 2**62
    ):
        raise bad
    return ConversationCursor(bool(pinned), last_activity_at, conversation_id)
