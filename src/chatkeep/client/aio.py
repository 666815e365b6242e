"""`AsyncClient`: the REST API, streaming replies, token windows and the event stream, for asyncio.
Its methods are written once for it and `Client` (see `operations.py`)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

from chatkeep.client.auth import TokenProvider
from chatkeep.client.calls import Call
from chatkeep.client.events import EventStream
from chatkeep.client.methods import AsyncClosing, Awaiting
from chatkeep.client.operations import Operations

T = TypeVar("T")


class AsyncClient(Operations[httpx.AsyncClient, TokenProvider], Awaiting, AsyncClosing):
    """A chatkeep server at `base_url`, with `token` (a user token or tenant API key, or a function,
    plain or async, that returns one; asked again once when the server answers 401).

    Requests that fail on the network, or answer 429 or 503, are sent again as `retry` allows;
    appends always carry a message id, so a message sent again is stored once."""

    async def aclose(self) -> None:
        if self._own_http:
            await self.http.aclose()

    async def request(self, call: Call[T]) -> T:
        """Send `call`, retrying as the policy allows; its answer read, or the error raised."""
        return await self._exchange(call)

    def events(self, conversation_id: str, *, after_seq: int | None = None) -> EventStream:
        """`async for event in client.events(cid, after_seq=n)`: the conversation's events, following
        it across disconnects (each message once, in seq order, from `after_seq`, or from now)."""
        return EventStream(self, conversation_id, after_seq)

    async def _call(self, call: Call[T]) -> T:
        return await self.request(call)

    def _new_http(self, timeout: float) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, timeout=timeout)

    async def _send(self, method: str, url: str, **options: Any) -> httpx.Response:
        return await self.http.request(method, url, **options)

    async def _sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    @staticmethod
    async def _ask(provider: Callable[[], Any]) -> str:
        value = provider()
        token: str = await value if inspect.isawaitable(value) else value
        return token
