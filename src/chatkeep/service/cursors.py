"""Cursors for the conversation list: a position in the list order, `<pinned>.<last activity>.<id>`
(pinned 0 or 1, last activity in epoch milliseconds, then the conversation id).

Every string that matches CURSOR_PATTERN is a valid position, so the API document can say exactly
which cursors are accepted; a cursor only ever narrows a query the caller may already run.
"""

from __future__ import annotations

import re

from chatkeep.errors import InvalidInput
from chatkeep.models import ConversationCursor

CURSOR_PATTERN = r"^[01]\.(0|[1-9][0-9]{0,17})\.[A-Za-z0-9_][A-Za-z0-9_.@+\-]{0,127}$"
CURSOR_RE = re.compile(CURSOR_PATTERN)
CURSOR_MAX_LENGTH = 2 + 19 + 128


def encode_cursor(cursor: ConversationCursor | None) -> str | None:
    """A URL-safe token for a position in the conversation list."""
    if cursor is None:
        return None
    return f"{int(cursor.pinned)}.{cursor.last_activity_at}.{cursor.id}"


def cursor_parts(token: str, pattern: re.Pattern[str]) -> tuple[str, str, str]:
    """The three dot-separated parts of a cursor this service issued (the last one, an id, may hold
    dots); `invalid_cursor` for a token that does not match `pattern`."""
    if not pattern.fullmatch(token):
        raise InvalidInput(
            "the cursor is not one this service issued; start again without it", code="invalid_cursor"
        )
    first, second, rest = token.split(".", 2)
    return first, second, rest


def decode_cursor(token: str) -> ConversationCursor:
    pinned, last_activity_at, conversation_id = cursor_parts(token, CURSOR_RE)
    return ConversationCursor(pinned == "1", int(last_activity_at), conversation_id)
