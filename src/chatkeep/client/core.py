"""What `Client` and `AsyncClient` share: the server, the retry policy, the token, and sending a call
with its retries, written once as async code (see `methods.py`). Each client adds the few things
that differ: its httpx client, how it waits, how it asks its token provider."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import httpx

from chatkeep.client.auth import TokenProvider, Tokens
from chatkeep.client.calls import Call
from chatkeep.client.errors import ChatkeepConnectionError, http_error
from chatkeep.client.retry import Attempts, RetryPolicy

T = TypeVar("T")
H = TypeVar("H", httpx.Client, httpx.AsyncClient)  # the client's httpx client
K = TypeVar("K", bound=TokenProvider)  # the tokens it accepts


class Core(ABC, Generic[H, K]):
    """A client of the server at `base_url`; `H` is its httpx client, `K` the tokens it accepts."""

    def __init__(
        self,
        base_url: str,
        token: K | None = None,
        *,
        retry: RetryPolicy | None = None,
        timeout: float = 10.0,
        http: H | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self.tokens = Tokens(token, self._ask)
        self._own_http = http is None
        self.http: H = http or self._new_http(timeout)

    @abstractmethod
    def _new_http(self, timeout: float) -> H: ...

    @abstractmethod
    async def _send(self, method: str, url: str, **options: Any) -> httpx.Response:
        """One request; raises httpx.TransportError when it fails on the way."""

    @abstractmethod
    async def _sleep(self, seconds: float) -> None: ...

    @staticmethod
    @abstractmethod
    async def _ask(provider: Callable[[], Any]) -> str:
        """What the token provider answers (static: the client's Tokens hold no reference to it)."""

    @abstractmethod
    async def _call(self, call: Call[T]) -> T:
        """`request(call)`, awaitable on both clients (so that the methods made of several calls go
        through `request` too, as those of one call do)."""

    async def _exchange(self, call: Call[T]) -> T:
        """Send `call`, retrying as the policy allows; its answer read, or the error raised."""
        attempts = Attempts(self.retry, call.idempotent)
        fresh = False
        asked_again = False
        while True:
            headers = dict(call.headers or {})
            token = await self.tokens.get(fresh)
            fresh = False
            if token is not None:
                headers["Authorization"] = f"Bearer {token}"
            try:
                response = await self._send(
                    call.method,
                    self.base_url + call.path,
                    params=call.params,
                    json=call.json,
                    content=call.content,
                    headers=headers,
                )
            except httpx.TransportError as exc:
                wait = attempts.after_error(exc)
                if wait is None:
                    raise ChatkeepConnectionError(f"{call.method} {call.path}: {exc!r}") from exc
                await self._sleep(wait)
                continue
            if response.status_code == 401 and self.tokens.refreshable and not asked_again:
                fresh = asked_again = True
                continue
            wait = attempts.after_response(response)
            if wait is not None:
                await self._sleep(wait)
                continue
            if response.status_code >= 400:
                raise http_error(response)
            return call.read(response)
