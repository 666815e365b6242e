"""One WebSocket client: authentication, the receive loop, and the Follower side the Hub delivers to.

A connection is one task (the ASGI one) that reads frames and runs their commands in order. Events
need no task of their own: the Hub hands them to `send`, which writes them straight to the socket
when it can take them (see wire). Ending the connection (too slow, events missed) wakes the receive
loop through the deadline it waits under. It speaks ASGI directly: an idle connection is a few
objects and one waiting coroutine chain, and at thousands of connections every layer counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from starlette.types import Receive, Scope, Send

from chatkeep.api.problems import close_code_for
from chatkeep.api.ws import commands
from chatkeep.api.ws.frames import (
    IDLE,
    RESUME,
    TOO_SLOW,
    UNAUTHENTICATED,
    BadFrame,
    error_frame,
    parse,
    parse_auth,
    too_large,
)
from chatkeep.api.ws.wire import Outlet
from chatkeep.codec import Frame
from chatkeep.errors import ChatkeepError, RateLimited
from chatkeep.service import Principal, Services

log = logging.getLogger("chatkeep.ws")
CLOSE_TIMEOUT = 30.0  # a client that stopped reading may never take the close frame
# Frames refused `rate_limited` in a row after which the socket is closed (4429): past that the client
# is not reading its answers, and each further frame would cost the server a reply for nothing.
REFUSALS_BEFORE_CLOSE = 50


class Close(Exception):
    """End the connection with this code (None: the client already left)."""

    def __init__(self, code: int | None, reason: str = "") -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class Connection:
    __slots__ = (
        "services",
        "settings",
        "principal",
        "outlet",
        "subscriptions",
        "_deltas",
        "_room",
        "_refused",
        "_scope",
        "_receive",
        "_send",
        "_open",
        "_ending",
        "_deadline",
        "__weakref__",
    )

    def __init__(self, services: Services, scope: Scope, receive: Receive, send: Send) -> None:
        self.services = services
        self.settings = services.settings
        self.principal: Principal
        self._scope = scope
        self._receive = receive
        self._send = send
        self._open = False
        self.outlet = Outlet(scope, send, self.settings.ws_send_queue, self.lagging)
        # conversation id -> the id of the subscribe frame whose backlog is being sent
        self.subscriptions: dict[str, str | None] = {}
        self._deltas = 0  # stream.delta frames taken and not yet stored
        self._room: asyncio.Event | None = None  # set when one of them is done
        self._refused = 0  # frames refused `rate_limited` in a row
        self._ending: Close | None = None
        self._deadline: asyncio.Timeout | None = None

    async def serve(self) -> None:
        """Accept the socket and run it to its end; every way it ends is handled here."""
        hub = self.services.hub
        attached = False
        try:
            if (await self._receive())["type"] != "websocket.connect":
                return
            await self._send({"type": "websocket.accept"})
            self._open = True
            self._scope["headers"] = []  # not needed once the socket is open (cookies make them large)
            self.principal = p = await self._authenticate()
            self.services.check_rate(p)  # a connect costs a request (4429 past the rate)
            await hub.attach(self)  # 4409 past the sockets this caller may hold
            attached = True
            self.send_json(
                {"type": "ready", "tenant": p.tenant.id, "user": p.user, "workspaces": _workspaces(p)}
            )
            await self._serve_frames()
        except Close as close:
            await self._close(close)
        except ChatkeepError as exc:  # e.g. the event bus is unreachable
            await self._close(Close(close_code_for(exc), exc.code))
        except OSError:  # the client left while something was being sent
            log.debug("client left")
        except Exception:
            log.exception("websocket handler failed")
            await self._close(Close(1011, "internal error"))
        finally:
            if attached:
                hub.detach(self)
            self.outlet.stop()

    # -- the Follower side ------------------------------------------------------------------------

    def send(self, frame: Frame) -> None:
        self.outlet.send(frame)

    def send_json(self, value: dict[str, Any]) -> None:
        self.outlet.send(Frame.of(value))

    async def drained(self) -> None:
        await self.outlet.drained()

    def interrupted(self) -> None:
        self.end(RESUME, "events may have been missed: reconnect and resume")

    def lagging(self) -> None:
        self.end(TOO_SLOW, "too slow: events arrived faster than they were read; reconnect and resume")

    def failed(self, conversation_id: str, error: Exception) -> None:
        if not isinstance(error, ChatkeepError):
            log.error("catching up on %s failed", conversation_id, exc_info=error)
            self.end(1011, "internal error")
            return
        frame_id = self.subscriptions.pop(conversation_id, None)
        self.send_json(error_frame(frame_id, error, conversation_id=conversation_id))

    def end(self, code: int, reason: str) -> None:
        """Close the connection soon: the receive loop wakes and closes it."""
        if self._ending is None:
            self._ending = Close(code, reason)
            if self._deadline is not None:
                self._deadline.reschedule(asyncio.get_running_loop().time())
            if self._room is not None:
                self._room.set()

    # -- deltas in flight -------------------------------------------------------------------------

    async def delta_room(self) -> None:
        """Return when fewer than CHATKEEP_WS_MAX_PENDING_DELTAS deltas of this socket are being
        stored. Meanwhile the socket is not read: a client sending faster than its deltas are stored
        waits, and costs the server a bounded amount of work."""
        while self._deltas >= self.settings.ws_max_pending_deltas:
            if self._ending is not None:
                raise self._ending
            if self._room is None:
                self._room = asyncio.Event()
            await self._room.wait()

    def delta_taken(self, stored: asyncio.Future[Any], done: Callable[[asyncio.Future[Any]], None]) -> None:
        """Count a delta in flight until `stored` is done; `done` then answers it."""
        self._deltas += 1

        def finished(future: asyncio.Future[Any]) -> None:
            self._deltas -= 1
            if self._room is not None:
                self._room.set()
                self._room = None
            done(future)

        stored.add_done_callback(finished)

    # -- receiving --------------------------------------------------------------------------------

    async def _authenticate(self) -> Principal:
        token = _query_token(self._scope)
        try:
            if token is None:
                try:
                    text = await self._next_text(self.settings.ws_auth_timeout_seconds)
                except TimeoutError:
                    raise Close(
                        UNAUTHENTICATED, 'authenticate first: {"type": "auth", "token": ...}'
                    ) from None
                token = parse_auth(text)
            client = self._scope.get("client")
            return await self.services.authenticate(token, client[0] if client else None)
        except ChatkeepError as exc:
            raise Close(UNAUTHENTICATED, exc.code) from None
        except ValueError as exc:
            raise Close(UNAUTHENTICATED, str(exc)) from None

    async def _next_text(self, timeout: float) -> str:
        if self._ending is not None:
            raise self._ending
        try:
            async with asyncio.timeout(timeout) as self._deadline:
                message = await self._receive()
        except TimeoutError:
            if self._ending is not None:
                raise self._ending from None
            raise
        finally:
            self._deadline = None
        if message["type"] == "websocket.disconnect":
            self._open = False
            raise Close(None)
        if message.get("bytes") is not None:
            raise Close(1003, "binary frames are not accepted: send JSON text")
        text: str = message.get("text") or ""
        if too_large(text, self.settings.max_body_bytes):
            raise Close(1009, f"frames are limited to {self.settings.max_body_bytes} bytes")
        return text

    async def _serve_frames(self) -> None:
        while True:
            try:
                text = await self._next_text(self.settings.ws_idle_timeout_seconds)
            except TimeoutError:
                raise Close(IDLE, "idle: send a ping at least every minute") from None
            frame_id: str | None = None
            try:
                try:
                    frame = parse(text)
                except BadFrame as bad:
                    frame_id = bad.frame_id
                    self.services.check_rate(self.principal)  # a frame that is not one costs as much
                    raise
                frame_id = getattr(frame, "id", None)
                await commands.run(self, frame)
                self._refused = 0
            except BadFrame as bad:
                self._refused = 0
                self.send_json(error_frame(bad.frame_id, bad.error))
            except RateLimited as exc:
                self._refused += 1
                if self._refused >= REFUSALS_BEFORE_CLOSE:  # a client that ignores the answers
                    raise Close(
                        close_code_for(exc), "rate_limited: frames kept coming past the rate"
                    ) from None
                self.send_json(error_frame(frame_id, exc))
            except ChatkeepError as exc:
                self._refused = 0
                self.send_json(error_frame(frame_id, exc))

    async def _close(self, close: Close) -> None:
        if close.code is None or not self._open:
            return
        self._open = False
        with contextlib.suppress(Exception):
            message = {"type": "websocket.close", "code": close.code, "reason": close.reason[:120]}
            await asyncio.wait_for(self._send(message), CLOSE_TIMEOUT)


def _query_token(scope: Scope) -> str | None:
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
    return values[0] if values else None


def _workspaces(p: Principal) -> list[str] | str:
    return "*" if p.workspaces is None else sorted(p.workspaces)
