"""Export: a caller's conversations with their messages, as chatkeep JSON, JSON Lines or Markdown.

Everything streams: conversations are read a page at a time through the list cursor, and messages
a page at a time through `read_messages`, so an export holds one page in memory whatever its size.
The output depends on the stored data only (no export time, no tenant id), so exporting the same
conversations twice, or from a server they were imported into, gives the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Literal

import orjson

from chatkeep import codec
from chatkeep.models import Conversation, ConversationQuery, Message, Mode
from chatkeep.service.auth import Principal
from chatkeep.service.routing import StoreRouter
from chatkeep.service.transfer import records
from chatkeep.service.validation import check_id

Format = Literal["json", "jsonl", "markdown"]
MEDIA_TYPES: dict[str, str] = {
    "json": "application/json",
    "jsonl": "application/x-ndjson",
    "markdown": "text/markdown; charset=utf-8",
}
EXTENSIONS = {"json": "json", "jsonl": "jsonl", "markdown": "md"}
CONVERSATION_PAGE = 100
MESSAGE_PAGE = 200


@dataclass(frozen=True, slots=True)
class Selection:
    """What to export: one conversation, or the caller's conversations narrowed to a workspace or
    a user (a user token only ever reaches its own)."""

    conversation: str | None = None
    workspace: str | None = None
    user: str | None = None


class Exporter:
    def __init__(self, router: StoreRouter) -> None:
        self.router = router

    async def open(self, p: Principal, selection: Selection) -> Export:
        """Check the selection (an unknown conversation raises NotFound here, before any output)."""
        for value, what in (
            (selection.conversation, "conversation id"),
            (selection.workspace, "workspace"),
            (selection.user, "user"),
        ):
            if value is not None:
                check_id(value, what)
        single = None
        if selection.conversation is not None:
            cid = selection.conversation
            single = await self.router.run(
                p.tenant.id, cid, lambda s: s.get_conversation(p.tenant.id, cid, p.scope)
            )
        return Export(self.router, p, selection, single)

    async def count(self, p: Principal, selection: Selection) -> int:
        """How many conversations an export will hold, about (for a progress bar)."""
        if selection.conversation is not None:
            return 1
        user = p.user if p.user is not None else selection.user
        return sum([await s.count_conversations(p.tenant.id, user) for s in self.router.stores])


class Export:
    def __init__(
        self, router: StoreRouter, p: Principal, selection: Selection, single: Conversation | None
    ) -> None:
        self.router = router
        self.principal = p
        self.selection = selection
        self.single = single

    async def conversations(self) -> AsyncIterator[Conversation]:
        if self.single is not None:
            yield self.single
            return
        p, s = self.principal, self.selection
        if p.user is not None and s.user is not None and s.user != p.user:
            return  # another user's: nothing this caller may see
        query = ConversationQuery(
            tenant=p.tenant.id,
            user=p.user if p.user is not None else s.user,
            allowed_workspaces=p.workspaces,
            workspace=s.workspace,
            limit=CONVERSATION_PAGE,
        )
        while True:
            page = await self.router.list(query)
            for conversation in page.items:
                yield conversation
            if page.next_cursor is None:
                return
            query = replace(query, after=page.next_cursor)

    async def pages(self, conversation: Conversation) -> AsyncIterator[list[Message]]:
        """The retained messages, a page at a time, oldest first."""
        if conversation.mode is Mode.LOCAL or conversation.message_count == 0:
            return
        store = self.router.for_mode(conversation.mode)
        after = conversation.first_seq - 1
        while True:
            page = await store.read_messages(conversation, after=after, limit=MESSAGE_PAGE)
            if page.messages:
                yield page.messages
                after = page.messages[-1].seq
            if not page.has_more or not page.messages:
                return

    async def chunks(
        self, fmt: Format, on_conversation: Callable[[Conversation, int], None] | None = None
    ) -> AsyncIterator[bytes]:
        """The export as bytes, a page at a time. `on_conversation(conversation, messages)` is
        called after each conversation is written."""
        writer = {"json": self._json, "jsonl": self._jsonl, "markdown": self._markdown}[fmt]
        async for chunk in writer(on_conversation or (lambda _c, _n: None)):
            yield chunk

    async def _jsonl(self, done: Callable[[Conversation, int], None]) -> AsyncIterator[bytes]:
        async for c in self.conversations():
            yield orjson.dumps({"type": "conversation", **records.conversation_record(c)}) + b"\n"
            count = 0
            async for page in self.pages(c):
                count += len(page)
                yield b"".join(
                    orjson.dumps({"type": "message", **records.message_record(m)}) + b"\n" for m in page
                )
            done(c, count)

    async def _json(self, done: Callable[[Conversation, int], None]) -> AsyncIterator[bytes]:
        yield b'{"format":"%s","version":%d,"conversations":[' % (records.FORMAT.encode(), records.VERSION)
        first = True
        async for c in self.conversations():
            head = orjson.dumps(records.conversation_record(c))[:-1] + b',"messages":['
            yield (b"\n" if first else b",\n") + head
            first, count = False, 0
            async for page in self.pages(c):
                yield (b"," if count else b"") + b",".join(
                    orjson.dumps(records.message_record(m)) for m in page
                )
                count += len(page)
            yield b"]}"
            done(c, count)
        yield b"\n]}\n"

    async def _markdown(self, done: Callable[[Conversation, int], None]) -> AsyncIterator[bytes]:
        async for c in self.conversations():
            yield _markdown_head(c).encode("utf-8")
            count = 0
            async for page in self.pages(c):
                count += len(page)
                yield "".join(_markdown_message(m) for m in page).encode("utf-8")
            yield b"\n---\n\n"
            done(c, count)


def _markdown_head(c: Conversation) -> str:
    flags = [name for name in ("starred", "pinned", "archived") if getattr(c, name)]
    lines = [
        f"# {c.title or 'Untitled conversation'}",
        "",
        f"- id: `{c.id}` · workspace `{c.workspace}` · user `{c.user}` · mode {c.mode.value}",
        f"- created {codec.iso(c.created_at)} · last activity {codec.iso(c.last_activity_at)}",
    ]
    if c.tags or flags:
        lines.append(f"- tags: {', '.join(c.tags) or '-'}" + (f" · {', '.join(flags)}" if flags else ""))
    if c.usage.input_tokens or c.usage.output_tokens:
        lines.append(f"- tokens: {c.usage.input_tokens} in, {c.usage.output_tokens} out")
    if c.mode is Mode.LOCAL:
        lines.append("- its messages live in the browser only")
    return "\n".join(lines) + "\n"


def _markdown_message(m: Message) -> str:
    status = "" if m.status.value == "complete" else f" ({m.status.value})"
    text = f"\n### {m.role.value}{status} · {codec.iso(m.created_at)} · seq {m.seq}\n\n"
    if m.content:
        text += m.content.rstrip("\n") + "\n"
    if m.parts:
        text += "\n```json\n" + json.dumps(m.parts, ensure_ascii=False, indent=2) + "\n```\n"
    return text
