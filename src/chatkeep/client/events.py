"""Following a conversation over WS /v1/ws, across disconnects.

The stream remembers the last seq of the `message.created` events it yielded and, after a dropped
connection, subscribes again with that seq as `after_seq`: the server sends what came after, and no
message is yielded twice or skipped. A reply still streaming when the connection dropped is
resumed from just before it instead; the stream drops what it already yielded and turns what the
reply grew meanwhile into one `message.delta` (and its `message.updated`, if it finished), so a
consumer that applies deltas by offset holds the exact text.

A conversation the caller cannot see raises `NotFoundError`; one more than 5,000 messages behind its
`after_seq` raises `BadRequestError` (`too_far_behind`: read it over REST instead). A deletion or
expiry of the conversation is yielded, then ends the stream."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from typing import TYPE_CHECKING, Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from chatkeep.client.errors import CLASSES, AuthenticationError, ChatkeepConnectionError, ChatkeepHTTPError
from chatkeep.client.methods import AsyncClosing
from chatkeep.client.types import Event, Message
from chatkeep.models import MessageStatus

if TYPE_CHECKING:
    from chatkeep.client.aio import AsyncClient

ENDS = frozenset({"conversation.deleted", "conversation.expired"})
UNAUTHENTICATED = 4401


class _Retry(Exception):
    """This connection attempt failed in a way worth trying again."""

    def __init__(self, wait: float | None = None) -> None:
        self.wait = wait


class EventStream(AsyncClosing):
    """An async iterator of `Event`s of one conversation; `aclose()` (or `async with`) ends it.
    `connection` is the current socket; `connects` counts the connections made."""

    def __init__(
        self, client: AsyncClient, conversation_id: str, after_seq: int | None, ping_interval: float = 20.0
    ) -> None:
        self.client = client
        self.conversation_id = conversation_id
        self.last_seq = after_seq  # of the last message.created yielded (None: from now)
        self.ping_interval = ping_interval
        self.connection: ClientConnection | None = None
        self.connects = 0
        self._streaming: dict[str, tuple[int, int]] = {}  # message id -> (seq, characters yielded)
        self._finished: deque[str] = deque(maxlen=256)
        self._ready: deque[Event] = deque()
        self._ended = False

    def __aiter__(self) -> EventStream:
        return self

    async def aclose(self) -> None:
        self._ended = True
        if self.connection is not None:
            await self.connection.close()
            self.connection = None

    async def __anext__(self) -> Event:
        while not self._ready:
            if self._ended:
                await self.aclose()
                raise StopAsyncIteration
            if self.connection is None:
                await self._connect()
                continue
            try:
                self._take(await self._receive(self.connection))
            except (ConnectionClosed, OSError):
                self.connection = None  # resume from what was yielded
            except _Retry as retry:  # the server asked to wait (rate, store unavailable)
                await self.connection.close()
                self.connection = None
                await asyncio.sleep(retry.wait or self.client.retry.backoff(0))
        return self._ready.popleft()

    async def _receive(self, ws: ClientConnection) -> dict[str, Any]:
        """The next frame; a ping goes out whenever nothing came for `ping_interval` (the server
        closes sockets that send nothing)."""
        while True:
            try:
                text = await asyncio.wait_for(ws.recv(), self.ping_interval)
            except TimeoutError:
                await ws.send(json.dumps({"type": "ping"}))
                continue
            frame = json.loads(text)
            if isinstance(frame, dict):
                return frame

    # -- connecting ---------------------------------------------------------------------------------

    async def _connect(self) -> None:
        policy = self.client.retry
        failures = 0
        fresh = False
        while True:
            try:
                self.connection = await self._open(fresh)
                self.connects += 1
                return
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd is not None else None
                if code == UNAUTHENTICATED and self.client.tokens.refreshable and not fresh:
                    fresh = True
                    continue
                if code == UNAUTHENTICATED:
                    reason = exc.rcvd.reason if exc.rcvd is not None else ""
                    raise AuthenticationError(401, "unauthenticated", reason, {}) from exc
                wait: float | None = None
            except _Retry as retry:
                wait = retry.wait
            except (OSError, InvalidHandshake, TimeoutError):
                wait = None
            failures += 1
            if failures >= policy.attempts:
                raise ChatkeepConnectionError(f"cannot follow {self.conversation_id} over the WebSocket")
            await asyncio.sleep(wait if wait is not None else policy.backoff(failures - 1))

    async def _open(self, fresh: bool) -> ClientConnection:
        url = self.client.base_url.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
        token = await self.client.tokens.get(fresh)
        ws = await connect(url + "/v1/ws", open_timeout=10)
        try:
            await ws.send(json.dumps({"type": "auth", "token": token or ""}))
            if (await self._receive(ws)).get("type") != "ready":
                raise _Retry()
            subscribe: dict[str, Any] = {
                "type": "subscribe",
                "id": "follow",
                "conversation_id": self.conversation_id,
            }
            resume = self._resume_point()
            if resume is not None:
                subscribe["after_seq"] = resume
            await ws.send(json.dumps(subscribe))
            while (frame := await self._receive(ws)).get("id") != "follow":
                self._take(frame)  # the backlog, sent before the answer
            if frame.get("type") == "error":
                raise self._refused(frame)
            if self.last_seq is None:
                self.last_seq = int(frame["last_seq"])
            return ws
        except BaseException:
            await ws.close()
            raise

    def _refused(self, frame: dict[str, Any]) -> Exception:
        status = int(frame.get("status", 0))
        if status in (429, 503):
            retry_after = frame.get("retry_after")
            return _Retry(float(retry_after) if isinstance(retry_after, (int, float)) else None)
        cls = CLASSES.get(status, ChatkeepHTTPError)
        return cls(status, str(frame.get("code")), str(frame.get("detail", "")), frame)

    def _resume_point(self) -> int | None:
        """The seq to resume after: the last one yielded, or just before a reply still streaming."""
        if self.last_seq is None:
            return None
        if self._streaming:
            return min(self.last_seq, min(seq for seq, _ in self._streaming.values()) - 1)
        return self.last_seq

    # -- what to yield ------------------------------------------------------------------------------

    def _take(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind == "error":
            raise self._refused(frame)
        if not isinstance(kind, str) or frame.get("conversation_id") != self.conversation_id:
            return  # pong, ack, another subscription's frames
        if "seq" not in frame:
            return
        event = Event.from_json(frame)
        if kind == "message.created" and event.message is not None:
            self._created(event, event.message)
        elif kind == "message.delta":
            self._delta(event)
        elif kind == "message.updated" and event.message is not None:
            self._updated(event, event.message)
        else:
            self._ready.append(event)
            if kind in ENDS:
                self._ended = True

    def _created(self, event: Event, message: Message) -> None:
        if self.last_seq is None or message.seq > self.last_seq:
            self.last_seq = message.seq
            if message.status is MessageStatus.STREAMING:
                self._streaming[message.id] = (message.seq, len(message.content))
            self._ready.append(event)
            return
        # Already yielded: only a reply that was streaming may have news (a resume from before it).
        if message.id not in self._streaming:
            return
        seq, held = self._streaming[message.id]
        if len(message.content) > held:
            grown = {
                "type": "message.delta",
                "conversation_id": message.conversation_id,
                "seq": seq,
                "message_id": message.id,
                "offset": held,
                "text": message.content[held:],
            }
            self._ready.append(Event.from_json(grown))
            self._streaming[message.id] = (seq, len(message.content))
        if message.status is not MessageStatus.STREAMING:
            self._updated(Event("message.updated", message.conversation_id, seq, {}, message), message)

    def _delta(self, event: Event) -> None:
        message_id = event.message_id
        if message_id is None or message_id not in self._streaming:
            if message_id not in self._finished:
                self._ready.append(event)  # a reply that began before this stream did
            return
        seq, held = self._streaming[message_id]
        start, text = event.offset, event.text
        if start + len(text) <= held or start > held:
            return  # already yielded (or past a gap, which the next resume fills)
        text = text[held - start :]
        data = {**event.data, "offset": held, "text": text}
        self._ready.append(Event(event.type, event.conversation_id, event.seq, data))
        self._streaming[message_id] = (seq, held + len(text))

    def _updated(self, event: Event, message: Message) -> None:
        if message.id in self._finished:
            return
        if message.status is not MessageStatus.STREAMING:
            self._streaming.pop(message.id, None)
            self._finished.append(message.id)
        self._ready.append(event)
