"""Where the client's credential comes from: a fixed token, or a function asked for one (again after
the server answered 401, once per request)."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

TokenProvider = str | Callable[[], str] | Callable[[], Awaitable[str]]


class AsyncTokens:
    """The current token of an AsyncClient; a provider may be a plain or an async function."""

    def __init__(self, provider: TokenProvider | None) -> None:
        self.provider = provider
        self._token: str | None = provider if isinstance(provider, str) else None

    @property
    def refreshable(self) -> bool:
        return callable(self.provider)

    async def get(self, fresh: bool = False) -> str | None:
        if callable(self.provider) and (fresh or self._token is None):
            value = self.provider()
            self._token = await value if inspect.isawaitable(value) else value
        return self._token


class Tokens:
    """The current token of a Client; a provider must be a plain function."""

    def __init__(self, provider: str | Callable[[], str] | None) -> None:
        self.provider = provider
        self._token: str | None = provider if isinstance(provider, str) else None

    @property
    def refreshable(self) -> bool:
        return callable(self.provider)

    def get(self, fresh: bool = False) -> str | None:
        if callable(self.provider) and (fresh or self._token is None):
            value = self.provider()
            if not isinstance(value, str):
                raise TypeError("the token provider of a Client must return a str (use AsyncClient)")
            self._token = value
        return self._token
