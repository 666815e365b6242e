"""The demo's built-in assistant: it answers each user message of the demo tenant with a streamed
echo of it, through the same streaming path a real assistant uses (open a `streaming` reply, grow
it by deltas at their offsets, finish it), so the demo page is a working chat with no model behind it.

Each reply has an id derived from the message it answers, so that with several instances sharing an
event bus the reply is stored (and streamed) once: the instances that lose the race see their
append answered as a retry and stop.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from dataclasses import KW_ONLY, dataclass, field

from chatkeep import tasks
from chatkeep.errors import ChatkeepError
from chatkeep.events.base import EventBus
from chatkeep.models import EventType, MessageStatus, Role
from chatkeep.service.auth import Principal
from chatkeep.service.messages import MessageInput, MessageService
from chatkeep.service.streams import StreamService
from chatkeep.service.tenants import DEMO_TENANT, TenantService

log = logging.getLogger("chatkeep.assistant")

REPLY_NAMESPACE = uuid.UUID("5b0f6f8e-2f55-4d0c-9d77-3c1f4b7d2a10")
WORDS_PER_DELTA = 3


def reply_id(conversation_id: str, message_id: str) -> str:
    return str(uuid.uuid5(REPLY_NAMESPACE, f"{conversation_id}/{message_id}"))


def reply_text(content: str) -> str:
    text = " ".join(content.split())
    if len(text) > 2_000:
        text = text[:2_000] + "…"
    return f"You said: {text}" if text else "You sent an empty message."


def pieces(text: str, words: int = WORDS_PER_DELTA) -> list[str]:
    """The reply cut into deltas of a few words each (spaces kept, so they join back exactly)."""
    tokens = re.findall(r"\S+\s*|\s+", text)
    return ["".join(tokens[i : i + words]) for i in range(0, len(tokens), words)] or [text]


@dataclass(eq=False)
class EchoAssistant(tasks.Background):
    """Follows the demo tenant's events and answers user messages, each reply taking about
    `duration` seconds from first to last delta."""

    task_name = "chatkeep-echo-assistant"

    events: EventBus
    tenants: TenantService
    chat: MessageService
    streams: StreamService
    _: KW_ONLY
    duration: float = 2.0
    _replies: set[asyncio.Task[None]] = field(default_factory=set, init=False, repr=False)

    async def stop(self) -> None:
        await super().stop()
        for reply in list(self._replies):
            await tasks.stop(reply)

    async def run(self) -> None:
        while not tasks.stopping():
            try:
                async with self.events.subscribe(DEMO_TENANT) as events:
                    async for event in events:
                        if event.type != EventType.MESSAGE_CREATED:
                            continue
                        message = event.data.get("message")
                        if not isinstance(message, dict) or message.get("role") != Role.USER.value:
                            continue
                        reply = asyncio.create_task(self._answer(event.user, event.conversation_id, message))
                        self._replies.add(reply)
                        reply.add_done_callback(self._replies.discard)
            except asyncio.CancelledError:
                raise
            except Exception:  # a lost bus subscription: follow again shortly
                log.warning("echo assistant lost its event subscription", exc_info=True)
            await asyncio.sleep(1.0)

    async def _answer(self, user: str, conversation_id: str, message: dict[str, object]) -> None:
        tenant = await self.tenants.ensure_demo()
        principal = Principal(tenant=tenant, user=user, workspaces=None)
        rid = reply_id(conversation_id, str(message.get("id")))
        parts = pieces(reply_text(str(message.get("content", ""))))
        try:
            opened = await self.chat.append_messages(
                principal,
                conversation_id,
                [MessageInput(role=Role.ASSISTANT, id=rid, status=MessageStatus.STREAMING)],
            )
            if not opened.results[0].created:
                return  # another instance answers it
            pause = self.duration / max(len(parts), 1)
            offset = 0
            for piece in parts:
                await asyncio.sleep(pause)
                await self.streams.delta(principal, conversation_id, rid, piece, offset=offset)
                offset += len(piece)
            await self.streams.finish(principal, conversation_id, rid, MessageStatus.COMPLETE)
        except ChatkeepError as exc:  # deleted, expired or a `local` conversation meanwhile
            log.debug("echo reply to %s stopped: %s", conversation_id, exc)
