"""Where the client's credential comes from: a fixed token, or a function asked for one (again after
the server answered 401, once per request)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

TokenProvider = str | Callable[[], str] | Callable[[], Awaitable[str]]


class Tokens:
    """The current token of a client; `ask` calls the provider as the client can (a Client's must be
    a plain function, an AsyncClient's may be async)."""

    def __init__(
        self, provider: TokenProvider | None, ask: Callable[[Callable[[], Any]], Awaitable[str]]
    ) -> None:
        self.provider = provider
        self._ask = ask
        self._token: str | None = provider if isinstance(provider, str) else None

    @property
    def refreshable(self) -> bool:
        return callable(self.provider)

    async def get(self, fresh: bool = False) -> str | None:
        if callable(self.provider) and (fresh or self._token is None):
            self._token = await self._ask(self.provider)
        return self._token
