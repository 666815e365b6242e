"""KeyedLocks: the writes of one conversation in this process, one at a time, in arrival order;
writes to different conversations never wait for each other, and a key nobody holds or waits for
keeps no entry. The FallbackStore takes turns so that what it learns is never older than what
Redis holds; PostgreSQL's hot writes, so that those of one process never race each other for a row.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Hashable


class KeyedLocks:
    """One lock per conversation, held by whoever writes it; dropped when nobody holds or waits."""

    def __init__(self) -> None:
        self._locks: dict[Hashable, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def held(self, key: Hashable) -> bool:
        entry = self._locks.get(key)
        return entry is not None and entry[0].locked()
