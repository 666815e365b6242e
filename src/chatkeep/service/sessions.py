"""Session cleanup: deleting a user's conversations all at once, when idle, or by id."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from chatkeep.errors import Forbidden, InvalidInput, NotFound
from chatkeep.models import Conversation, ConversationCursor, Mode, now_ms
from chatkeep.service.auth import Principal
from chatkeep.service.conversations import ConversationService, ListFilters
from chatkeep.service.cursors import encode_cursor
from chatkeep.service.validation import check_id

MAX_SPECIFIC = 500
# Sessions are the conversations that were never meant to be kept: cleanup leaves durable and
# local conversations alone unless asked to include them.
SESSION_MODES = frozenset({Mode.EPHEMERAL, Mode.NONE})


class Strategy(StrEnum):
    ALL = "all"
    INACTIVE = "inactive"
    SPECIFIC = "specific"


@dataclass(frozen=True, slots=True)
class Cleanup:
    strategy: Strategy
    ids: tuple[str, ...] = ()
    idle_seconds: int = 3600
    workspace: str | None = None
    user: str | None = None
    modes: frozenset[Mode] = field(default_factory=lambda: SESSION_MODES)


async def cleanup(chat: ConversationService, p: Principal, request: Cleanup) -> list[Conversation]:
    """Delete the caller's conversations that the strategy selects (with a tenant key: those of
    `user`, or of every user); returns what was deleted. `specific` deletes the named ids whatever
    their mode; `all` and `inactive` (last activity older than `idle_seconds`) take conversations of
    the requested modes, sessions by default. A user token naming another `user` is refused
    (`Forbidden`, code `user_mismatch`) rather than answered with nothing deleted."""
    if p.user is not None and request.user is not None and request.user != p.user:
        raise Forbidden("a user token cleans up its own user's sessions only", code="user_mismatch")
    if request.strategy is Strategy.SPECIFIC:
        if len(request.ids) > MAX_SPECIFIC:
            raise InvalidInput(f"at most {MAX_SPECIFIC} ids at once", code="invalid_cleanup")
        targets = [check_id(cid, "conversation id") for cid in dict.fromkeys(request.ids)]
    else:
        targets = [c.id for c in await _select(chat, p, request)]
    deleted = []
    for cid in targets:
        try:
            deleted.append(await chat.delete_conversation(p, cid))
        except NotFound:  # already gone, expired, or not the caller's: nothing to do
            continue
    return deleted


async def _select(chat: ConversationService, p: Principal, request: Cleanup) -> list[Conversation]:
    if request.idle_seconds < 0:
        raise InvalidInput("'idle_seconds' must be >= 0", code="invalid_cleanup")
    idle_before = now_ms() - request.idle_seconds * 1000
    filters = ListFilters(workspace=request.workspace, user=request.user)
    selected: list[Conversation] = []
    cursor: ConversationCursor | None = None
    while True:
        page = await chat.list_conversations(
            p, filters, limit=chat.limits.max_page_size, cursor=encode_cursor(cursor)
        )
        for c in page.items:
            if c.mode in request.modes and (
                request.strategy is Strategy.ALL or c.last_activity_at <= idle_before
            ):
                selected.append(c)
        if page.next_cursor is None:
            return selected
        cursor = page.next_cursor
