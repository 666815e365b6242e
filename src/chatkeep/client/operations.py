"""The client's methods, each written once for `Client` and `AsyncClient` (see `methods.py`).

A method that sends one call is the call's function in `calls.py` (or `account`, `transfer`,
`search`), whose signature and docstring it takes; the few that send several are async methods here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar, Unpack

from chatkeep.client import account, calls, transfer
from chatkeep.client.calls import Call, ConversationFilters
from chatkeep.client.core import Core, H, K
from chatkeep.client.methods import DualMethod, iteration, operation
from chatkeep.client.reply import AsyncReply, Reply, opening
from chatkeep.client.search import search as search_call
from chatkeep.client.types import Conversation, Message
from chatkeep.client.window import TokenCounter, Window

P = ParamSpec("P")
T = TypeVar("T")


def sends(build: Callable[P, Call[T]]) -> DualMethod[P, T, Coroutine[Any, Any, T]]:
    """The method that sends the call `build` makes and answers what it reads."""

    def blocking(client: Any, /, *args: P.args, **kwargs: P.kwargs) -> T:
        result: T = client.request(build(*args, **kwargs))
        return result

    async def awaiting(client: Any, /, *args: P.args, **kwargs: P.kwargs) -> T:
        result: T = await client.request(build(*args, **kwargs))
        return result

    return DualMethod(blocking, awaiting, build, bound=False)


def replies(opens: Callable[P, tuple[str, dict[str, Any]]]) -> DualMethod[P, Reply, AsyncReply]:
    """The method that opens a streaming reply: a `Reply` of a Client, an `AsyncReply` of an AsyncClient."""

    def blocking(client: Any, /, *args: P.args, **kwargs: P.kwargs) -> Reply:
        return Reply(client.request, *opens(*args, **kwargs))

    def awaiting(client: Any, /, *args: P.args, **kwargs: P.kwargs) -> AsyncReply:
        return AsyncReply(client.request, *opens(*args, **kwargs))

    return DualMethod(blocking, awaiting, opens, bound=False)


class Operations(Core[H, K]):
    """The methods of both clients: a line each for those that send one call, then those that send several."""

    create_conversation = sends(calls.create_conversation)
    list_conversations = sends(calls.list_conversations)
    get_conversation = sends(calls.get_conversation)
    update_conversation = sends(calls.update_conversation)
    delete_conversation = sends(calls.delete_conversation)
    heartbeat = sends(calls.heartbeat)
    append = sends(calls.append)
    append_batch = sends(calls.append_batch)
    list_messages = sends(calls.list_messages)
    stream_reply = replies(opening)
    append_delta = sends(calls.append_delta)
    finish_stream = sends(calls.finish_stream)
    cleanup_sessions = sends(account.cleanup_sessions)
    get_persistence_settings = sends(account.get_persistence_settings)
    put_persistence_settings = sends(account.put_persistence_settings)
    dev_token = sends(account.dev_token)
    health = sends(account.health)
    export = sends(transfer.export)
    import_file = sends(transfer.import_file)
    search = sends(search_call)

    async def _iter_conversations(
        self, *, limit: int = 50, **filters: Unpack[ConversationFilters]
    ) -> AsyncIterator[Conversation]:
        """Every conversation the filters select, following the cursor page after page."""
        cursor: str | None = None
        while True:
            page = await self._call(calls.list_conversations(**filters, limit=limit, cursor=cursor))
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    iter_conversations = iteration(_iter_conversations)

    async def _latest_within(
        self,
        conversation_id: str,
        max_tokens: int,
        count: int | None = None,
        counter: TokenCounter | None = None,
        *,
        page_size: int = 50,
    ) -> list[Message]:
        """The latest messages (at most `count`) whose tokens add up to no more than `max_tokens`,
        oldest first, reading pages backwards only as far as needed. A message's tokens come from its
        stored usage, else `counter`, else about four characters a token."""
        window = Window(max_tokens, count, counter, page_size)
        if window.empty_request:
            return []
        before: int | None = None
        while True:
            call = calls.list_messages(conversation_id, before=before, limit=window.page_size)
            before = window.take(await self._call(call))
            if before is None:
                return window.messages()

    latest_within = operation(_latest_within)
