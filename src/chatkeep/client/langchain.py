"""A LangChain chat message history kept by chatkeep (`pip install chatkeep[langchain]`).

    history = ChatkeepChatMessageHistory.connect(url, token, conversation_id, workspace="w1")
    RunnableWithMessageHistory(chain, lambda session_id: history, ...)

LangChain messages are stored as chatkeep messages: human -> user, ai -> assistant, system -> system,
tool and function -> tool, and a `chat` message by its role (user when chatkeep has no such role).
The text goes in `content` (a list of content blocks in `parts`); the message's type, id,
`additional_kwargs` and its other fields (tool calls, `tool_call_id`, `name`, response metadata...)
go in the message's metadata under `langchain`, so that reading gives back the same message. An AI
message's `usage_metadata` is stored as the chatkeep usage too, which token windows count. Messages
written by other clients (no `langchain` metadata) are read by their role, with chatkeep's id.

Reading can be bounded: `window=N` reads the latest N messages, `max_tokens` the latest that fit
that many tokens (see `latest_within`); otherwise the whole history is read, oldest first.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, dataclass
from typing import Any

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    message_to_dict,
    messages_from_dict,
)

from chatkeep.client import calls
from chatkeep.client.aio import AsyncClient
from chatkeep.client.calls import new_message_id
from chatkeep.client.errors import NotFoundError
from chatkeep.client.methods import run_sync
from chatkeep.client.operations import Operations
from chatkeep.client.sync import Client
from chatkeep.client.types import Message, NewMessage
from chatkeep.client.window import MAX_PAGE
from chatkeep.models import Role, Usage

__all__ = ["ChatkeepChatMessageHistory", "from_langchain", "to_langchain"]

KEY = "langchain"
ROLES = {
    "human": Role.USER,
    "ai": Role.ASSISTANT,
    "system": Role.SYSTEM,
    "tool": Role.TOOL,
    "function": Role.TOOL,
}
ALL_TOKENS = 2**62


def from_langchain(message: BaseMessage) -> NewMessage:
    """The chatkeep message that stores `message`."""
    record = message_to_dict(message)
    data = json.loads(json.dumps(record["data"], default=str))  # metadata is JSON
    content = data.pop("content")
    role = ROLES.get(message.type) or _chat_role(data.get("role"))
    usage = data.get("usage_metadata") or {}
    return NewMessage(
        role=role,
        content=content if isinstance(content, str) else "",
        parts=None if isinstance(content, str) else list(content),
        metadata={KEY: {"type": record["type"], "data": data}},
        usage=Usage(int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))) if usage else None,
    )


def to_langchain(message: Message) -> BaseMessage:
    """The LangChain message a chatkeep message holds."""
    stored = (message.metadata or {}).get(KEY)
    content: Any = message.content if message.parts is None else message.parts
    if isinstance(stored, dict) and isinstance(stored.get("data"), dict):
        return messages_from_dict([{"type": stored["type"], "data": {**stored["data"], "content": content}}])[
            0
        ]
    if message.role is Role.ASSISTANT:
        return AIMessage(content=content, id=message.id)
    if message.role is Role.SYSTEM:
        return SystemMessage(content=content, id=message.id)
    if message.role is Role.TOOL:
        call = (message.metadata or {}).get("tool_call_id", "")
        return ToolMessage(content=content, id=message.id, tool_call_id=str(call))
    return HumanMessage(content=content, id=message.id)


def _chat_role(role: object) -> Role:
    return Role(role) if role in {r.value for r in Role} else Role.USER


@dataclass(eq=False)
class ChatkeepChatMessageHistory(BaseChatMessageHistory):
    """The history of one chatkeep conversation. Give a `Client` for LangChain's blocking calls
    (`invoke`), an `AsyncClient` for its async ones (`ainvoke`), or both. With `workspace`, the
    conversation is created on the first message when it does not exist (and again after `clear`,
    which deletes it: chatkeep has no call that empties a conversation)."""

    conversation_id: str
    _: KW_ONLY
    client: Client | None = None
    async_client: AsyncClient | None = None
    workspace: str | None = None
    window: int | None = None
    max_tokens: int | None = None
    token_counter: Callable[[BaseMessage], int] | None = None

    def __post_init__(self) -> None:
        if self.client is None and self.async_client is None:
            raise ValueError("give a Client, an AsyncClient, or both")

    @classmethod
    def connect(
        cls, base_url: str, token: str, conversation_id: str, **options: Any
    ) -> ChatkeepChatMessageHistory:
        """A history with both clients, for `invoke` and `ainvoke` alike."""
        return cls(
            conversation_id,
            client=Client(base_url, token),
            async_client=AsyncClient(base_url, token),
            **options,
        )

    def close(self) -> None:
        """Close the blocking client (`aclose` closes both)."""
        if self.client is not None:
            self.client.close()

    async def aclose(self) -> None:
        self.close()
        if self.async_client is not None:
            await self.async_client.aclose()

    def _counter(self) -> Callable[[Message], int] | None:
        count = self.token_counter
        return None if count is None else (lambda m: count(to_langchain(m)))

    # -- reading and writing, once for both clients ---------------------------------------------------

    def _sync(self) -> Client:
        if self.client is None:
            raise RuntimeError("this history has no blocking Client: use the async methods (ainvoke)")
        return self.client

    async def _read(self, c: Operations[Any, Any]) -> list[BaseMessage]:
        try:
            if self.max_tokens is not None or self.window is not None:
                budget = ALL_TOKENS if self.max_tokens is None else self.max_tokens
                found = await c._latest_within(self.conversation_id, budget, self.window, self._counter())
            else:
                found = []
                after = 0
                while True:
                    page = await c._call(
                        calls.list_messages(self.conversation_id, after=after, limit=MAX_PAGE)
                    )
                    found += page.messages
                    if not page.has_more or not page.messages:
                        break
                    after = page.messages[-1].seq
        except NotFoundError:
            return []
        return [to_langchain(m) for m in found]

    async def _add(self, c: Operations[Any, Any], messages: Sequence[BaseMessage]) -> None:
        drafts = [_with_id(from_langchain(m)) for m in messages]
        if not drafts:
            return
        try:
            await c._call(calls.append_batch(self.conversation_id, drafts))
        except NotFoundError:
            if self.workspace is None:
                raise
            await c._call(calls.create_conversation(self.workspace, id=self.conversation_id))
            await c._call(calls.append_batch(self.conversation_id, drafts))

    async def _clear(self, c: Operations[Any, Any]) -> None:
        try:
            await c._call(calls.delete_conversation(self.conversation_id))
        except NotFoundError:
            pass

    # -- blocking (LangChain's invoke) -----------------------------------------------------------------

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        """The history (or its window), oldest first; empty when the conversation does not exist."""
        return run_sync(self._read(self._sync()))

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        if messages:
            run_sync(self._add(self._sync(), messages))

    def clear(self) -> None:
        run_sync(self._clear(self._sync()))

    # -- async (LangChain's ainvoke); without an AsyncClient, LangChain runs the blocking ones ------

    async def aget_messages(self) -> list[BaseMessage]:
        if self.async_client is None:
            return await super().aget_messages()
        return await self._read(self.async_client)

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        if self.async_client is None:
            return await super().aadd_messages(messages)
        return await self._add(self.async_client, messages)

    async def aclear(self) -> None:
        if self.async_client is None:
            return await super().aclear()
        return await self._clear(self.async_client)


def _with_id(draft: NewMessage) -> NewMessage:
    """Ids chosen before the first attempt, so a batch sent again after a 404 is the same batch."""
    return NewMessage(draft.role, draft.content, new_message_id(), draft.parts, draft.metadata, draft.usage)
