"""GroupCommitWriter: SQLite's one writer, committing queued writes together.

A commit is where SQLite waits for the disk (an fsync with `synchronous=FULL`). One thread owns the
write connection; it takes every write waiting in its queue, runs each inside its own SAVEPOINT of a
single `BEGIN IMMEDIATE` transaction, and commits once. A write that fails rolls back only its
savepoint, and its caller gets the error; the others commit. Each caller is answered only after the
commit that made its write durable, so an acknowledged write is on disk. With one writer nothing
waits, and the cost is one commit a write, as before; with many, one commit serves them all: a
group of more than one waits a fraction of a millisecond for the writes still arriving.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy as sa

T = TypeVar("T")
Operation = Callable[[sa.Connection], Any]

MAX_GROUP = 64
# How long a group of more than one write waits for more before it commits. Under many writers the
# queue fills in waves: a commit of all of them split into a few and the rest, two commits where one
# would do, each writing its own copies of the pages the writes share. A fraction of one commit's
# time (which waits for the disk); a lone writer never waits.
GATHER_SECONDS = 0.0002
_STOP = object()


class GroupCommitWriter:
    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name="chatkeep-sqlite-write", daemon=True)
        self._thread.start()

    async def submit(self, operation: Callable[[sa.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((operation, loop, future))
        return await future

    def stop(self) -> None:
        """Finish what is queued, then end the thread."""
        self._queue.put(_STOP)
        self._thread.join()

    def _serve(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            group = [first]
            stopping = self._take(group)
            if not stopping and 1 < len(group) < MAX_GROUP:
                # Writers are arriving together: give those still on their way a moment to join.
                time.sleep(GATHER_SECONDS)
                stopping = self._take(group)
            self._commit(group)
            if stopping:
                return

    def _take(self, group: list[Any]) -> bool:
        """Add what is queued to `group`, up to MAX_GROUP; True when told to stop."""
        while len(group) < MAX_GROUP:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return False
            if item is _STOP:
                return True
            group.append(item)
        return False

    def _commit(self, group: list[Any]) -> None:
        outcomes: list[tuple[bool, Any]] = []
        try:
            with self._engine.begin() as conn:
                if len(group) == 1:
                    operation = group[0][0]
                    outcomes.append(_attempt(lambda: operation(conn)))
                    if not outcomes[0][0]:
                        raise _RolledBack
                else:
                    db = conn.connection.driver_connection
                    for operation, _, _ in group:
                        outcomes.append(_in_savepoint(conn, db, operation))
        except _RolledBack:
            pass
        except BaseException as exc:  # the commit itself failed: nothing of the group is durable
            outcomes = [(False, exc)] * len(group)
        # One wake-up of each waiting event loop a group, not one a write.
        answers: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
        for (_, loop, future), (ok, value) in zip(group, outcomes, strict=True):
            answers.setdefault(loop, []).append((future, ok, value))
        for loop, settled in answers.items():
            loop.call_soon_threadsafe(_settle, settled)


class _RolledBack(Exception):
    """The only write of a group failed: roll the transaction back (no savepoint was needed)."""


def _attempt(call: Callable[[], Any]) -> tuple[bool, Any]:
    try:
        return True, call()
    except Exception as exc:
        return False, exc


def _in_savepoint(conn: sa.Connection, db: Any, operation: Operation) -> tuple[bool, Any]:
    # On the driver connection `db` under `conn`: SQLAlchemy's nested transactions cost several times
    # what SQLite does for a savepoint. An operation's own nested transactions stay within this one.
    db.execute("SAVEPOINT chatkeep_write")
    try:
        result = operation(conn)
    except Exception as exc:
        # ROLLBACK TO keeps the savepoint (and ends those the operation left open within it).
        db.execute("ROLLBACK TO chatkeep_write")
        db.execute("RELEASE chatkeep_write")
        return False, exc
    db.execute("RELEASE chatkeep_write")
    return True, result


def _settle(settled: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for future, ok, value in settled:
        if future.cancelled():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
