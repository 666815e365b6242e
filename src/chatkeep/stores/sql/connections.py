"""The connections of PostgreSQL's hot writes (`postgres.py`): a small pool of asyncpg connections,
and the statements they run, compiled once.

asyncpg's own pool is general: it gives a connection back through a task shielding the release,
with timeouts and a reset step, which cost a write about a tenth of the server's time. Here a write
takes a connection by popping it from a list, and gives it back by pushing it there, or straight to
the write waiting longest. Connections open as writes need them, up to `size`; the one used last
goes out first, so the others stay idle and close after `idle_seconds`. A connection that failed,
or that the server closed, is closed and forgotten, and a waiting write opens one in its place.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect

Connect = Callable[[], Awaitable[Any]]


class Compiled:
    """A statement as SQL text with positional parameters, and the order of its parameter names."""

    def __init__(self, statement: sa.ClauseElement) -> None:
        compiled = statement.compile(dialect=asyncpg_dialect.dialect())  # type: ignore[no-untyped-call]
        self.sql = str(compiled)
        self.names: tuple[str, ...] = tuple(getattr(compiled, "positiontup", None) or ())

    def args(self, params: Mapping[str, Any]) -> list[Any]:
        return [params[name] for name in self.names]


class Connections:
    def __init__(self, connect: Connect, size: int, idle_seconds: float = 300.0) -> None:
        self._connect = connect
        self._size = size
        self._idle_seconds = idle_seconds
        self._idle: list[tuple[Any, float]] = []  # (connection, when it was given back), oldest first
        self._open = 0  # open, or opening
        # Writes waiting for a connection; each is handed one, or None to open one itself.
        self._waiting: deque[asyncio.Future[Any]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    async def acquire(self) -> Any:
        while True:
            while self._idle:
                conn, _ = self._idle.pop()
                if not conn.is_closed():
                    return conn
                self._open -= 1  # the server closed it while it sat here
            if self._closed:
                raise asyncpg.InterfaceError("the connections are closed")
            if self._open < self._size:
                return await self._opened()
            waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            try:
                conn = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled() and waiter.result() is not None:
                    self.release(waiter.result())  # handed one just as the caller gave up
                raise
            if conn is not None:
                return conn

    def release(self, conn: Any, *, broken: bool = False) -> None:
        """Give `conn` back; `broken`: it failed in a way that leaves it unusable."""
        if broken or self._closed or conn.is_closed():
            conn.terminate()
            self._open -= 1
            self._hand(None)  # a write waiting may open one in its place
            return
        if not self._hand(conn):
            self._idle.append((conn, time.monotonic()))
            if self._timer is None:
                self._timer = asyncio.get_running_loop().call_later(self._idle_seconds, self._close_idle)

    async def close(self) -> None:
        """Close the idle connections now, and the others as they are given back."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        idle, self._idle = self._idle, []
        self._open -= len(idle)
        await asyncio.gather(*(conn.close() for conn, _ in idle), return_exceptions=True)
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)  # it finds the connections closed

    async def _opened(self) -> Any:
        self._open += 1
        try:
            return await self._connect()
        except BaseException:
            self._open -= 1
            self._hand(None)
            raise

    def _hand(self, conn: Any) -> bool:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return True
        return False

    def _close_idle(self) -> None:
        self._timer = None
        expired = time.monotonic() - self._idle_seconds
        while self._idle and self._idle[0][1] <= expired:
            conn, _ = self._idle.pop(0)
            self._open -= 1
            conn.terminate()
        if self._idle:
            wait = self._idle[0][1] + self._idle_seconds - time.monotonic()
            self._timer = asyncio.get_running_loop().call_later(max(wait, 0.0), self._close_idle)
