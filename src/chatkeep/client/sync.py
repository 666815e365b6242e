"""`Client`: the REST API, streaming replies and token windows, blocking (see `AsyncClient` for asyncio
and the event stream). Its methods are `AsyncClient`'s, run to their end at once (see `methods.py`):
it sends with a blocking httpx client and waits with `time.sleep`, so it works the same in a plain
thread and in code that runs inside an event loop."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

from chatkeep.client.calls import Call
from chatkeep.client.methods import Blocking, Closing, run_sync
from chatkeep.client.operations import Operations

T = TypeVar("T")


class Client(Operations[httpx.Client, str | Callable[[], str]], Blocking, Closing):
    """A chatkeep server at `base_url`, with `token` (a user token or tenant API key, or a function
    that returns one; asked again once when the server answers 401).

    Requests that fail on the network, or answer 429 or 503, are sent again as `retry` allows;
    appends always carry a message id, so a message sent again is stored once."""

    def close(self) -> None:
        if self._own_http:
            self.http.close()

    def request(self, call: Call[T]) -> T:
        """Send `call`, retrying as the policy allows; its answer read, or the error raised."""
        return run_sync(self._exchange(call))

    async def _call(self, call: Call[T]) -> T:
        return self.request(call)

    def _new_http(self, timeout: float) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=timeout)

    async def _send(self, method: str, url: str, **options: Any) -> httpx.Response:
        return self.http.request(method, url, **options)

    async def _sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    @staticmethod
    async def _ask(provider: Callable[[], Any]) -> str:
        value = provider()
        if not isinstance(value, str):
            if inspect.iscoroutine(value):
                value.close()  # so that Python does not also warn it was never awaited
            raise TypeError("the token provider of a Client must return a str (use AsyncClient)")
        return value
