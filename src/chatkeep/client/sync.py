"""`Client`: the REST API, streaming replies and token windows, blocking (see `AsyncClient` for asyncio
and the event stream)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any, Literal, TypeVar, Unpack

import httpx

from chatkeep.client import account, calls, search, transfer
from chatkeep.client.account import CleanupOptions, SettingsChanges
from chatkeep.client.auth import Tokens
from chatkeep.client.calls import UNSET, Call, ConversationFilters, ListQuery, message_body
from chatkeep.client.errors import ChatkeepConnectionError, http_error
from chatkeep.client.reply import Reply
from chatkeep.client.retry import Attempts, RetryPolicy
from chatkeep.client.search import SearchResults, SearchScope
from chatkeep.client.transfer import Owner, Selection
from chatkeep.client.types import (
    AppendResult,
    BatchResult,
    CleanupResult,
    Conversation,
    ConversationPage,
    Delta,
    Heartbeat,
    LoadedConversation,
    Message,
    MessagePage,
    NewMessage,
    PersistenceSettings,
)
from chatkeep.client.window import TokenCounter, Window
from chatkeep.models import Mode, Role, Usage

T = TypeVar("T")


class Client:
    """A chatkeep server at `base_url`, with `token` (a user token or tenant API key, or a function
    that returns one; asked again once when the server answers 401).

    Requests that fail on the network, or answer 429 or 503, are sent again as `retry` allows;
    appends always carry a message id, so a message sent again is stored once."""

    def __init__(
        self,
        base_url: str,
        token: str | Callable[[], str] | None = None,
        *,
        retry: RetryPolicy | None = None,
        timeout: float = 10.0,
        http: httpx.Client | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self.tokens = Tokens(token)
        self._own_http = http is None
        self.http = http or httpx.Client(base_url=self.base_url, timeout=timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._own_http:
            self.http.close()

    def request(self, call: Call[T]) -> T:
        """Send `call`, retrying as the policy allows; its answer read, or the error raised."""
        attempts = Attempts(self.retry, call.idempotent)
        fresh = False
        asked_again = False
        while True:
            headers = dict(call.headers or {})
            token = self.tokens.get(fresh)
            fresh = False
            if token is not None:
                headers["Authorization"] = f"Bearer {token}"
            try:
                response = self.http.request(
                    call.method,
                    self.base_url + call.path,
                    params=call.params,
                    json=call.json,
                    content=call.content,
                    headers=headers,
                )
            except httpx.TransportError as exc:
                wait = attempts.after_error(exc)
                if wait is None:
                    raise ChatkeepConnectionError(f"{call.method} {call.path}: {exc!r}") from exc
                time.sleep(wait)
                continue
            if response.status_code == 401 and self.tokens.refreshable and not asked_again:
                fresh = asked_again = True
                continue
            wait = attempts.after_response(response)
            if wait is not None:
                time.sleep(wait)
                continue
            if response.status_code >= 400:
                raise http_error(response)
            return call.read(response)

    def create_conversation(
        self,
        workspace: str,
        *,
        id: str | None = None,
        title: str = "",
        mode: Mode | str | None = None,
        user: str | None = None,
        tags: Iterable[str] = (),
        starred: bool = False,
        pinned: bool = False,
        archived: bool = False,
    ) -> Conversation:
        """Create a conversation (with a new random id when none is given, so that a retry finds it)."""
        return self.request(
            calls.create_conversation(
                workspace,
                id=id,
                title=title,
                mode=mode,
                user=user,
                tags=tags,
                starred=starred,
                pinned=pinned,
                archived=archived,
            )
        )

    def list_conversations(self, **query: Unpack[ListQuery]) -> ConversationPage:
        """A page of the caller's conversations; filters `workspace`, `user`, `starred`, `pinned`,
        `archived`, `tag`, `q`, with `limit` and `cursor` (the previous page's `next_cursor`)."""
        return self.request(calls.list_conversations(**query))

    def iter_conversations(
        self, *, limit: int = 50, **filters: Unpack[ConversationFilters]
    ) -> Iterator[Conversation]:
        """Every conversation the filters select, following the cursor page after page."""
        cursor: str | None = None
        while True:
            page = self.list_conversations(**filters, limit=limit, cursor=cursor)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def get_conversation(self, conversation_id: str, messages: int = 50) -> LoadedConversation:
        """The conversation and its latest `messages` messages, oldest first."""
        return self.request(calls.get_conversation(conversation_id, messages))

    def update_conversation(
        self,
        conversation_id: str,
        if_match: int | Literal["*"],
        *,
        title: str = UNSET,
        starred: bool = UNSET,
        pinned: bool = UNSET,
        archived: bool = UNSET,
        tags: Iterable[str] = UNSET,
    ) -> Conversation:
        """Change the fields given, if the conversation is still at version `if_match` (`*`: any)."""
        return self.request(
            calls.update_conversation(
                conversation_id,
                if_match,
                title=title,
                starred=starred,
                pinned=pinned,
                archived=archived,
                tags=tags,
            )
        )

    def delete_conversation(self, conversation_id: str) -> None:
        self.request(calls.delete_conversation(conversation_id))

    def heartbeat(self, conversation_id: str) -> Heartbeat:
        """Slide the conversation's expiry from now (a page still open)."""
        return self.request(calls.heartbeat(conversation_id))

    def append(
        self,
        conversation_id: str,
        role: Role | str,
        content: str = "",
        *,
        id: str | None = None,
        parts: list[Any] | None = None,
        metadata: dict[str, Any] | None = None,
        usage: Usage | None = None,
    ) -> AppendResult:
        """Append a message; `created` is False when its id was already stored."""
        body = message_body(str(role), content, id=id, parts=parts, metadata=metadata, usage=usage)
        return self.request(calls.append(conversation_id, body))

    def append_batch(self, conversation_id: str, messages: Sequence[NewMessage]) -> BatchResult:
        """Append several messages in order, all or nothing."""
        bodies = [
            message_body(str(m.role), m.content, id=m.id, parts=m.parts, metadata=m.metadata, usage=m.usage)
            for m in messages
        ]
        return self.request(calls.append_batch(conversation_id, bodies))

    def list_messages(
        self, conversation_id: str, *, before: int | None = None, after: int | None = None, limit: int = 50
    ) -> MessagePage:
        """A page by seq, oldest first: the latest, those before or after a seq, or between two."""
        return self.request(calls.list_messages(conversation_id, before=before, after=after, limit=limit))

    def latest_within(
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
            page = self.list_messages(conversation_id, before=before, limit=window.page_size)
            before = window.take(page)
            if before is None:
                return window.messages()

    def stream_reply(
        self,
        conversation_id: str,
        role: Role | str = "assistant",
        *,
        id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Reply:
        """`with client.stream_reply(cid) as reply: reply.send("Hel")`: opens a streaming
        message, finishes it `complete` at the end of the block, `interrupted` if the block raises."""
        body = message_body(str(role), "", id=id, metadata=metadata, status="streaming")
        return Reply(self.request, conversation_id, body)

    def append_delta(
        self, conversation_id: str, message_id: str, text: str, offset: int | None = None
    ) -> Delta:
        """Grow a streaming message; with `offset` (the length already sent) a retry is stored once."""
        return self.request(calls.append_delta(conversation_id, message_id, text, offset))

    def finish_stream(
        self,
        conversation_id: str,
        message_id: str,
        status: Literal["complete", "interrupted"] = "complete",
        usage: Usage | None = None,
    ) -> Message:
        return self.request(calls.finish_stream(conversation_id, message_id, status, usage))

    def cleanup_sessions(
        self, strategy: Literal["all", "inactive", "specific"], **options: Unpack[CleanupOptions]
    ) -> CleanupResult:
        """Delete the caller's sessions: `all`, `inactive` (`idle_seconds`) or `specific` (`ids`)."""
        return self.request(account.cleanup_sessions(strategy, **options))

    def get_persistence_settings(self) -> PersistenceSettings:
        """The tenant's persistence settings (tenant API key only)."""
        return self.request(account.get_persistence_settings())

    def put_persistence_settings(self, **changes: Unpack[SettingsChanges]) -> PersistenceSettings:
        """Change `default_mode`, `ephemeral_ttl_seconds`, `pinned_never_expire` (None: the default)."""
        return self.request(account.put_persistence_settings(**changes))

    def dev_token(self, user: str = "demo-user", workspace: str | None = None) -> str:
        """A demo user token from a dev-mode server on loopback."""
        return self.request(account.dev_token(user, workspace))

    def health(self, ready: bool = True) -> dict[str, Any]:
        return self.request(account.health(ready))

    def export(
        self, format: Literal["json", "jsonl", "markdown"] = "jsonl", **selection: Unpack[Selection]
    ) -> bytes:
        """The caller's conversations with their messages: one, a workspace's, a user's, or all."""
        return self.request(transfer.export(format, **selection))

    def import_file(
        self, data: bytes, format: Literal["json", "jsonl"] = "json", **owner: Unpack[Owner]
    ) -> dict[str, Any]:
        """Import a file (see the README); answers how many were imported, skipped and failed."""
        return self.request(transfer.import_file(data, format, **owner))

    def search(self, q: str, **scope: Unpack[SearchScope]) -> SearchResults:
        """Messages and titles of the caller's conversations that hold every word of `q`, best first;
        `workspace`, `user` (tenant API key), `limit` and `cursor` (the previous page's `next_cursor`)."""
        return self.request(search.search(q, **scope))
