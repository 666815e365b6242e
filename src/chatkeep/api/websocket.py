"""WS /v1/ws: events as they happen, resume without gaps, and writes over the socket.

Frames are JSON text. The client authenticates with `?token=` or a first frame
`{"type": "auth", "token": ...}`, then sends `subscribe` (a conversation, with `after_seq` to resume,
or a workspace), `unsubscribe`, `append`, `heartbeat`, `stream.delta`, `stream.finish`, `ping`.
The server sends `ready`, `subscribed`, events (`message.created`, `message.delta`,
`message.updated`, `conversation.created|updated|deleted|expired`), `ack`, `error` and `pong`.
A frame with an `id` is answered with that id. Bad frames get an `error` frame; the connection
goes on. Close codes: see CLOSE_CODES below and the README.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
from fastapi import APIRouter, WebSocket
from pydantic import BaseModel, ValidationError
from starlette.websockets import WebSocketState

from chatkeep import codec
from chatkeep.api.problems import close_code_for, status_for
from chatkeep.api.routes.messages import message_input
from chatkeep.api.schemas import (
    AppendFrame,
    AuthFrame,
    DeltaFrame,
    FinishFrame,
    HeartbeatFrame,
    PingFrame,
    SubscribeFrame,
)
from chatkeep.errors import ChatkeepError, InvalidInput, RateLimited
from chatkeep.models import Event, EventType, Message, MessageStatus, Usage
from chatkeep.service import Principal, Services
from chatkeep.service.realtime import backlog

router = APIRouter()
log = logging.getLogger("chatkeep.ws")

# Close codes, besides the standard 1000 (normal), 1003 (binary frame) and 1009 (frame too large).
UNAUTHENTICATED = 4401  # no valid credentials in time
IDLE = 4408  # nothing received for CHATKEEP_WS_IDLE_TIMEOUT_SECONDS
TOO_SLOW = 4008  # events arrived faster than the client read them: reconnect and resume
RESUME = 4012  # the server may have missed events meanwhile: reconnect and resume
FRAMES: dict[str, type[BaseModel]] = {
    "subscribe": SubscribeFrame,
    "unsubscribe": SubscribeFrame,
    "append": AppendFrame,
    "heartbeat": HeartbeatFrame,
    "stream.delta": DeltaFrame,
    "stream.finish": FinishFrame,
    "ping": PingFrame,
}


class Close(Exception):
    """End the connection with this code (None: the client already left)."""

    def __init__(self, code: int | None, reason: str = "") -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@router.websocket("/v1/ws")
async def websocket_endpoint(ws: WebSocket) -> None:
    services: Services = ws.app.state.services
    await ws.accept()
    connection = Connection(ws, services)
    try:
        await connection.run()
    except Close as close:
        await connection.close(close)
    except ChatkeepError as exc:  # e.g. the event bus is unreachable
        await connection.close(Close(close_code_for(exc), exc.code))
    except Exception:
        log.exception("websocket handler failed")
        await connection.close(Close(1011, "internal error"))


class Connection:
    """One client. Receiver, sender and watchdog run in one task group: when one ends, the others are
    cancelled, and leaving the hub drops every subscription."""

    def __init__(self, ws: WebSocket, services: Services) -> None:
        self.ws = ws
        self.services = services
        self.settings = services.settings
        self.principal: Principal
        self._outbox: asyncio.Queue[str] = asyncio.Queue(self.settings.ws_send_queue)
        self._ending: asyncio.Future[Close] = asyncio.get_running_loop().create_future()
        # Conversations being caught up: their live events wait here until the backlog is sent.
        self._held: dict[str, list[Event]] = {}
        self._deltas: set[asyncio.Task[None]] = set()

    # -- lifecycle --------------------------------------------------------------------------------

    async def run(self) -> None:
        self.principal = await self._authenticate()
        p = self.principal
        await self._send(
            {"type": "ready", "tenant": p.tenant.id, "user": p.user, "workspaces": _workspaces(p)}
        )
        async with self.services.hub.attached(self):
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(self._receive())
                    group.create_task(self._transmit())
                    group.create_task(self._watch())
            except* Close as ended:
                raise ended.exceptions[0] from None
            finally:
                for task in self._deltas:
                    task.cancel()

    async def close(self, close: Close) -> None:
        if close.code is None or self.ws.client_state is not WebSocketState.CONNECTED:
            return
        # A client that stopped reading may never take the close frame: do not wait forever.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(close.code, close.reason[:120]), timeout=30)

    def end(self, code: int, reason: str) -> None:
        if not self._ending.done():
            self._ending.set_result(Close(code, reason))

    async def _watch(self) -> None:
        raise await self._ending

    async def _authenticate(self) -> Principal:
        token = self.ws.query_params.get("token")
        try:
            if token is None:
                try:
                    text = await asyncio.wait_for(self._next_text(), self.settings.ws_auth_timeout_seconds)
                except TimeoutError:
                    raise Close(
                        UNAUTHENTICATED, 'authenticate first: {"type": "auth", "token": ...}'
                    ) from None
                token = _parse(AuthFrame, text).token
            return await self.services.auth.authenticate(token)
        except (ChatkeepError, ValidationError, orjson.JSONDecodeError) as exc:
            reason = exc.code if isinstance(exc, ChatkeepError) else "send an auth frame first"
            raise Close(UNAUTHENTICATED, reason) from None

    # -- receiving --------------------------------------------------------------------------------

    async def _next_text(self) -> str:
        message = await self.ws.receive()
        if message["type"] == "websocket.disconnect":
            raise Close(None)
        if message.get("bytes") is not None:
            raise Close(1003, "binary frames are not accepted: send JSON text")
        text: str = message.get("text") or ""
        if len(text) > self.settings.max_body_bytes:
            raise Close(1009, f"frames are limited to {self.settings.max_body_bytes} bytes")
        return text

    async def _receive(self) -> None:
        while True:
            try:
                text = await asyncio.wait_for(self._next_text(), self.settings.ws_idle_timeout_seconds)
            except TimeoutError:
                raise Close(IDLE, "idle: send a ping at least every minute") from None
            frame_id: str | None = None
            try:
                raw = orjson.loads(text)
                if isinstance(raw, dict) and isinstance(raw.get("id"), str):
                    frame_id = raw["id"][:64]
                await self._handle(raw)
            except orjson.JSONDecodeError:
                self._error(None, InvalidInput("the frame is not valid JSON", code="invalid_json"))
            except ValidationError as exc:
                errors = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
                self._error(frame_id, InvalidInput("; ".join(errors)[:500], code="invalid_frame"))
            except ChatkeepError as exc:
                self._error(frame_id, exc)

    async def _handle(self, raw: Any) -> None:
        kind = raw.get("type") if isinstance(raw, dict) else None
        model = FRAMES.get(kind) if isinstance(kind, str) else None
        if model is None:
            known = ", ".join(sorted(FRAMES))
            raise InvalidInput(f"unknown frame type {kind!r}; known: {known}", code="unknown_type")
        frame = model.model_validate(raw)
        if not isinstance(frame, DeltaFrame):  # deltas are bounded by the reply's size instead
            self.services.check_rate(self.principal)
        if isinstance(frame, SubscribeFrame):
            await (self._subscribe(frame) if frame.type == "subscribe" else self._unsubscribe(frame))
        elif isinstance(frame, AppendFrame):
            outcome = await self.services.chat.append_messages(
                self.principal, frame.conversation_id, [message_input(frame.message)]
            )
            (result,) = outcome.results
            message = codec.message_json(result.message)
            self._ack(frame.id, seq=result.message.seq, created=result.created, message=message)
        elif isinstance(frame, HeartbeatFrame):
            c = await self.services.chat.heartbeat(self.principal, frame.conversation_id)
            self._ack(
                frame.id, expires_at=codec.iso(c.expires_at), last_activity_at=codec.iso(c.last_activity_at)
            )
        elif isinstance(frame, DeltaFrame):
            self._spawn_delta(frame)
        elif isinstance(frame, FinishFrame):
            usage = Usage(frame.usage.input_tokens, frame.usage.output_tokens) if frame.usage else None
            done = await self.services.streams.finish(
                self.principal, frame.conversation_id, frame.message_id, MessageStatus(frame.status), usage
            )
            self._ack(frame.id, message=codec.message_json(done))
        elif isinstance(frame, PingFrame):
            self._queue({"type": "pong", "id": frame.id})

    def _spawn_delta(self, frame: DeltaFrame) -> None:
        """Deltas are not awaited one by one (that would allow no coalescing): each runs as a task,
        started in arrival order, which is the order the stream service queues them in."""

        async def run() -> None:
            try:
                ext = await self.services.streams.delta(
                    self.principal, frame.conversation_id, frame.message_id, frame.text, offset=frame.offset
                )
                self._ack(frame.id, offset=ext.offset, appended=ext.appended, length=len(ext.message.content))
            except ChatkeepError as exc:
                self._error(frame.id, exc)

        task = asyncio.get_running_loop().create_task(run())
        self._deltas.add(task)
        task.add_done_callback(self._deltas.discard)

    async def _subscribe(self, frame: SubscribeFrame) -> None:
        hub, chat = self.services.hub, self.services.chat
        if (frame.conversation_id is None) == (frame.workspace is None):
            raise InvalidInput("subscribe to a 'conversation_id' or a 'workspace'", code="invalid_frame")
        if frame.conversation_id is None:
            workspace = frame.workspace
            hub.follow_workspace(self, None if workspace == "*" else workspace)
            self._queue({"type": "subscribed", "id": frame.id, "workspace": workspace})
            return
        cid = frame.conversation_id
        self._held[cid] = []
        hub.follow_conversation(self, cid)
        missed: list[Message] = []
        try:
            if frame.after_seq is None:  # from now on
                conversation = await chat.get_conversation(self.principal, cid)
            else:
                conversation, missed = await backlog(chat, self.principal, cid, frame.after_seq)
        except ChatkeepError:
            hub.unfollow_conversation(self, cid)
            self._held.pop(cid, None)
            raise
        for message in missed:
            self._queue(
                _event_frame(
                    cid,
                    EventType.MESSAGE_CREATED.value,
                    message.seq,
                    {"message": codec.message_json(message)},
                )
            )
        covered = max([conversation.last_seq, *(m.seq for m in missed)])
        self._queue(
            {
                "type": "subscribed",
                "id": frame.id,
                "conversation_id": cid,
                "last_seq": covered,
                "replayed": len(missed),
            }
        )
        for event in self._held.pop(cid, []):
            if event.type is EventType.MESSAGE_CREATED and event.seq is not None and event.seq <= covered:
                continue  # the backlog already had it
            self._put(encoded(event))

    async def _unsubscribe(self, frame: SubscribeFrame) -> None:
        if frame.conversation_id is not None:
            self.services.hub.unfollow_conversation(self, frame.conversation_id)
            self._held.pop(frame.conversation_id, None)
        if frame.workspace is not None:
            self.services.hub.unfollow_workspace(self, None if frame.workspace == "*" else frame.workspace)
        self._queue({"type": "unsubscribed", "id": frame.id})

    # -- sending ----------------------------------------------------------------------------------

    def deliver(self, event: Event) -> None:
        """From the hub: queue an event, or hold it while its conversation is being caught up."""
        held = self._held.get(event.conversation_id)
        if held is not None:
            held.append(event)
        else:
            self._put(encoded(event))

    def interrupted(self) -> None:
        self.end(RESUME, "events may have been missed: reconnect and resume")

    def _queue(self, frame: dict[str, Any]) -> None:
        self._put(orjson.dumps(frame).decode())

    def _put(self, text: str) -> None:
        try:
            self._outbox.put_nowait(text)
        except asyncio.QueueFull:
            self.end(TOO_SLOW, "too slow: events arrived faster than they were read; reconnect and resume")

    def _ack(self, frame_id: str | None, **fields: Any) -> None:
        self._queue({"type": "ack", "id": frame_id, **fields})

    def _error(self, frame_id: str | None, exc: ChatkeepError) -> None:
        frame: dict[str, Any] = {
            "type": "error",
            "id": frame_id,
            "code": exc.code,
            "status": status_for(exc),
            "detail": exc.detail,
        }
        if isinstance(exc, RateLimited):
            frame["retry_after"] = exc.retry_after
        self._queue(frame)

    async def _transmit(self) -> None:
        while True:
            await self._send_text(await self._outbox.get())

    async def _send(self, frame: dict[str, Any]) -> None:
        await self._send_text(orjson.dumps(frame).decode())

    async def _send_text(self, text: str) -> None:
        try:
            await self.ws.send_text(text)
        except (RuntimeError, OSError):  # the client left while we were sending
            raise Close(None) from None


_encoded: dict[int, tuple[Event, str]] = {}


def encoded(event: Event) -> str:
    """The frame of an event as JSON text, encoded once however many connections it goes to."""
    hit = _encoded.get(id(event))
    if hit is not None and hit[0] is event:
        return hit[1]
    if len(_encoded) >= 256:
        _encoded.clear()
    text = orjson.dumps(event_frame(event)).decode()
    _encoded[id(event)] = (event, text)
    return text


def event_frame(event: Event) -> dict[str, Any]:
    return _event_frame(
        event.conversation_id, event.type.value, event.seq, event.data, event.version, event.workspace
    )


def _event_frame(
    cid: str,
    kind: str,
    seq: int | None,
    data: dict[str, Any],
    version: int | None = None,
    workspace: str | None = None,
) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": kind, "conversation_id": cid, "seq": seq}
    if version is not None:
        frame["version"] = version
    if workspace:
        frame["workspace"] = workspace
    return {**frame, **data}


def _parse(model: type[AuthFrame], text: str) -> AuthFrame:
    return model.model_validate(orjson.loads(text))


def _workspaces(p: Principal) -> list[str] | str:
    return "*" if p.workspaces is None else sorted(p.workspaces)
