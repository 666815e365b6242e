"""Every REST endpoint as a `Call`: the request to send and how to read its answer. Each function
here is also a method of `Client` and `AsyncClient` (see `operations.py`), with its signature and
docstring: the method sends the call and answers what it reads."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypedDict, TypeVar
from urllib.parse import quote

import httpx

from chatkeep.client.types import (
    AppendResult,
    BatchResult,
    Conversation,
    ConversationPage,
    Delta,
    Heartbeat,
    LoadedConversation,
    Message,
    MessagePage,
    NewMessage,
    parse,
)
from chatkeep.models import Mode, Role, Usage

T = TypeVar("T")
UNSET: Any = object()  # a field the caller did not pass (None can be a value to send)


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    method: str
    path: str
    read: Callable[[httpx.Response], T]
    params: dict[str, Any] | None = None
    json: Any = None
    headers: dict[str, str] | None = None
    # A body sent as it is (with its Content-Type in `headers`), instead of `json`.
    content: bytes | None = None
    # Safe to send again when the first attempt may have reached the server (see retry.py).
    idempotent: bool = True


class ConversationFilters(TypedDict, total=False):
    """What `list_conversations` selects by (`user`: with a tenant API key; `q`: title text)."""

    workspace: str | None
    user: str | None
    starred: bool | None
    pinned: bool | None
    archived: bool | None
    tag: str | None
    q: str | None


class ListQuery(ConversationFilters, total=False):
    limit: int
    cursor: str | None  # the previous page's `next_cursor`


def new_message_id() -> str:
    return uuid.uuid4().hex


def _c(cid: str) -> str:
    return f"/v1/conversations/{quote(cid, safe='')}"


def given(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not UNSET}


def _usage(usage: Usage | None) -> dict[str, int] | None:
    return (
        None if usage is None else {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}
    )


def _conversation(r: httpx.Response) -> Conversation:
    return Conversation.from_json(r.json())


def _message(r: httpx.Response) -> Message:
    return Message.from_json(r.json())


def _appended(r: httpx.Response) -> AppendResult:
    return AppendResult(Message.from_json(r.json()), created=r.status_code == 201)


def message_body(
    role: str,
    content: str = "",
    *,
    id: str | None = None,
    parts: list[Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    usage: Usage | None = None,
    status: Literal["complete", "streaming"] = "complete",
) -> dict[str, Any]:
    """An append's body; every message gets an id (a new uuid4 hex when none is given), so that
    sending it again stores it once."""
    body: dict[str, Any] = {"id": id or new_message_id(), "role": str(role), "content": content}
    if parts is not None:
        body["parts"] = parts
    if metadata is not None:
        body["metadata"] = dict(metadata)
    if usage is not None:
        body["usage"] = _usage(usage)
    if status != "complete":
        body["status"] = status
    return body


def create_conversation(
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
) -> Call[Conversation]:
    """Create a conversation (with a new random id when none is given, so that a retry finds it)."""
    body: dict[str, Any] = {
        "workspace": workspace,
        "id": id or str(uuid.uuid4()),  # chosen here, so that a retried create finds it
        "title": title,
        "tags": list(tags),
        "starred": starred,
        "pinned": pinned,
        "archived": archived,
    }
    if mode is not None:
        body["mode"] = str(mode)
    if user is not None:
        body["user"] = user
    return Call("POST", "/v1/conversations", _conversation, json=body)


def list_conversations(
    *,
    workspace: str | None = None,
    user: str | None = None,
    starred: bool | None = None,
    pinned: bool | None = None,
    archived: bool | None = None,
    tag: str | None = None,
    q: str | None = None,
    limit: int = 20,
    cursor: str | None = None,
) -> Call[ConversationPage]:
    """A page of the caller's conversations; filters `workspace`, `user`, `starred`, `pinned`,
    `archived`, `tag`, `q`, with `limit` and `cursor` (the previous page's `next_cursor`)."""
    values = {"workspace": workspace, "user": user, "tag": tag, "q": q, "cursor": cursor, "limit": limit}
    params: dict[str, Any] = {k: v for k, v in values.items() if v is not None}
    for name, flag in (("starred", starred), ("pinned", pinned), ("archived", archived)):
        if flag is not None:
            params[name] = "true" if flag else "false"

    def read(r: httpx.Response) -> ConversationPage:
        body = r.json()
        return ConversationPage([Conversation.from_json(c) for c in body["items"]], body["next_cursor"])

    return Call("GET", "/v1/conversations", read, params=params)


def get_conversation(conversation_id: str, messages: int = 50) -> Call[LoadedConversation]:
    """The conversation and its latest `messages` messages, oldest first."""

    def read(r: httpx.Response) -> LoadedConversation:
        body = r.json()
        return LoadedConversation(
            Conversation.from_json(body),
            [Message.from_json(m) for m in body["messages"]],
            body["has_more_messages"],
        )

    return Call("GET", _c(conversation_id), read, params={"messages": messages})


def update_conversation(
    conversation_id: str,
    if_match: int | Literal["*"],
    *,
    title: str = UNSET,
    starred: bool = UNSET,
    pinned: bool = UNSET,
    archived: bool = UNSET,
    tags: Iterable[str] = UNSET,
) -> Call[Conversation]:
    """Change the fields given, if the conversation is still at version `if_match` (`*`: any)."""
    body = given(title=title, starred=starred, pinned=pinned, archived=archived)
    if tags is not UNSET:
        body["tags"] = list(tags)
    match = "*" if if_match == "*" else f'"{if_match}"'
    return Call(
        "PATCH", _c(conversation_id), _conversation, json=body, headers={"If-Match": match}, idempotent=False
    )


def delete_conversation(conversation_id: str) -> Call[None]:
    return Call("DELETE", _c(conversation_id), lambda r: None)


def heartbeat(conversation_id: str) -> Call[Heartbeat]:
    """Slide the conversation's expiry from now (a page still open)."""
    return Call("POST", f"{_c(conversation_id)}/heartbeat", lambda r: parse(Heartbeat, r.json()))


def append(
    conversation_id: str,
    role: Role | str,
    content: str = "",
    *,
    id: str | None = None,
    parts: list[Any] | None = None,
    metadata: dict[str, Any] | None = None,
    usage: Usage | None = None,
) -> Call[AppendResult]:
    """Append a message; `created` is False when its id was already stored."""
    body = message_body(str(role), content, id=id, parts=parts, metadata=metadata, usage=usage)
    return post_message(conversation_id, body)


def post_message(conversation_id: str, body: dict[str, Any]) -> Call[AppendResult]:
    return Call("POST", f"{_c(conversation_id)}/messages", _appended, json=body)


def append_batch(conversation_id: str, messages: Sequence[NewMessage]) -> Call[BatchResult]:
    """Append several messages in order, all or nothing."""
    bodies = [
        message_body(str(m.role), m.content, id=m.id, parts=m.parts, metadata=m.metadata, usage=m.usage)
        for m in messages
    ]

    def read(r: httpx.Response) -> BatchResult:
        body = r.json()
        results = [AppendResult(Message.from_json(x["message"]), x["created"]) for x in body["results"]]
        return BatchResult(results, bool(body.get("provisional", False)))

    return Call("POST", f"{_c(conversation_id)}/messages:batch", read, json={"messages": bodies})


def list_messages(
    conversation_id: str, *, before: int | None = None, after: int | None = None, limit: int = 50
) -> Call[MessagePage]:
    """A page by seq, oldest first: the latest, those before or after a seq, or between two."""
    values = {"before": before, "after": after, "limit": limit}
    params = {k: v for k, v in values.items() if v is not None}

    def read(r: httpx.Response) -> MessagePage:
        body = r.json()
        return MessagePage([Message.from_json(m) for m in body["messages"]], body["has_more"])

    return Call("GET", f"{_c(conversation_id)}/messages", read, params=params)


def append_delta(conversation_id: str, message_id: str, text: str, offset: int | None = None) -> Call[Delta]:
    """Grow a streaming message; with `offset` (the length already sent) a retry is stored once."""
    body: dict[str, Any] = {"text": text}
    if offset is not None:
        body["offset"] = offset

    # Without an offset a second send would add the text twice.
    path = f"{_c(conversation_id)}/messages/{quote(message_id, safe='')}/deltas"
    return Call("POST", path, lambda r: parse(Delta, r.json()), json=body, idempotent=offset is not None)


def finish_stream(
    conversation_id: str,
    message_id: str,
    status: Literal["complete", "interrupted"] = "complete",
    usage: Usage | None = None,
) -> Call[Message]:
    body: dict[str, Any] = {"status": status}
    if usage is not None:
        body["usage"] = _usage(usage)
    path = f"{_c(conversation_id)}/messages/{quote(message_id, safe='')}/finish"
    return Call("POST", path, _message, json=body)
