"""What each client frame does. Every command goes through the same services, and so the same rules,
as its REST counterpart."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from chatkeep import codec
from chatkeep.api.inputs import message_input, usage_of
from chatkeep.api.schemas import (
    AppendFrame,
    DeltaFrame,
    FinishFrame,
    HeartbeatFrame,
    PingFrame,
    SubscribeFrame,
)
from chatkeep.api.ws.frames import error_frame
from chatkeep.errors import ChatkeepError, InvalidInput
from chatkeep.models import MessageStatus
from chatkeep.service import Extension

if TYPE_CHECKING:
    from chatkeep.api.ws.connection import Connection

log = logging.getLogger("chatkeep.ws")


async def run(conn: Connection, frame: BaseModel) -> None:
    # Every frame costs a request, before anything is read: deltas too, whether they append text,
    # repeat an offset or name a message that is not there.
    conn.services.check_rate(conn.principal)
    if isinstance(frame, SubscribeFrame):
        await (subscribe(conn, frame) if frame.type == "subscribe" else unsubscribe(conn, frame))
    elif isinstance(frame, AppendFrame):
        await append(conn, frame)
    elif isinstance(frame, HeartbeatFrame):
        c = await conn.services.chat.heartbeat(conn.principal, frame.conversation_id)
        ack(
            conn, frame.id, expires_at=codec.iso(c.expires_at), last_activity_at=codec.iso(c.last_activity_at)
        )
    elif isinstance(frame, DeltaFrame):
        await delta(conn, frame)
    elif isinstance(frame, FinishFrame):
        done = await conn.services.streams.finish(
            conn.principal,
            frame.conversation_id,
            frame.message_id,
            MessageStatus(frame.status),
            usage_of(frame.usage),
        )
        ack(conn, frame.id, message=codec.message_json(done))
    elif isinstance(frame, PingFrame):
        conn.send_json({"type": "pong", "id": frame.id})


def ack(conn: Connection, frame_id: str | None, **fields: Any) -> None:
    conn.send_json({"type": "ack", "id": frame_id, **fields})


async def subscribe(conn: Connection, frame: SubscribeFrame) -> None:
    hub = conn.services.hub
    if (frame.conversation_id is None) == (frame.workspace is None):
        raise InvalidInput("subscribe to a 'conversation_id' or a 'workspace'", code="invalid_frame")
    if frame.conversation_id is None:
        workspace = frame.workspace
        hub.follow_workspace(conn, None if workspace == "*" else workspace)
        conn.send_json({"type": "subscribed", "id": frame.id, "workspace": workspace})
        return
    cid = frame.conversation_id

    def ready(last_seq: int, replayed: int) -> None:
        conn.subscriptions.pop(cid, None)
        conn.send_json(
            {
                "type": "subscribed",
                "id": frame.id,
                "conversation_id": cid,
                "last_seq": last_seq,
                "replayed": replayed,
            }
        )

    conn.subscriptions[cid] = frame.id
    try:
        await hub.follow_conversation(conn, cid, frame.after_seq, ready)
    except BaseException:
        conn.subscriptions.pop(cid, None)
        raise


async def unsubscribe(conn: Connection, frame: SubscribeFrame) -> None:
    if frame.conversation_id is not None:
        conn.services.hub.unfollow_conversation(conn, frame.conversation_id)
        conn.subscriptions.pop(frame.conversation_id, None)
    if frame.workspace is not None:
        conn.services.hub.unfollow_workspace(conn, None if frame.workspace == "*" else frame.workspace)
    conn.send_json({"type": "unsubscribed", "id": frame.id})


async def append(conn: Connection, frame: AppendFrame) -> None:
    outcome = await conn.services.chat.append_messages(
        conn.principal, frame.conversation_id, [message_input(frame.message)]
    )
    (result,) = outcome.results
    provisional = {"provisional": True} if outcome.provisional else {}
    ack(
        conn,
        frame.id,
        seq=result.message.seq,
        created=result.created,
        message=codec.message_json(result.message),
        **provisional,
    )


async def delta(conn: Connection, frame: DeltaFrame) -> None:
    """Deltas are not awaited one by one (that would allow no coalescing): each is handed to the
    stream service in arrival order, which stores them in that order, several in one write when they
    queue up. At most CHATKEEP_WS_MAX_PENDING_DELTAS are in flight per socket; each is acknowledged
    once stored."""
    await conn.delta_room()
    stored = conn.services.streams.submit(
        conn.principal, frame.conversation_id, frame.message_id, frame.text, offset=frame.offset
    )

    def answer(done: asyncio.Future[Extension]) -> None:
        if done.cancelled():
            return
        error = done.exception()
        if error is None:
            ext = done.result()
            ack(conn, frame.id, offset=ext.offset, appended=ext.appended, length=len(ext.message.content))
        elif isinstance(error, ChatkeepError):
            conn.send_json(error_frame(frame.id, error))
        else:
            log.error("storing a delta failed", exc_info=error)
            conn.end(1011, "internal error")

    conn.delta_taken(stored, answer)
