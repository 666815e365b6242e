"""PostgreSQL's hot appends, written together: appends to different conversations that are ready
while others are being written go to the database as one statement, one round trip and one commit.

A write is planned on its conversation's row as it was read (or as this process's last append left
it) and holds only if the row is still that version: each conversation's part of a group is
conditional on its own row, so a conversation whose row moved writes nothing while the others are
written (`statements.APPEND_GROUP_IF_UNCHANGED`). A statement is atomic: if PostgreSQL refuses one
part (a message id already stored, say), the whole group is refused, and each of its appends is
sent again alone, so that only that one fails.

When nothing is waiting and fewer than `SENDERS` statements are in flight, an append goes at once,
alone, as does one of `MANY` messages or more; otherwise it waits for a sender, which takes every
append then waiting, one a conversation.
So one client's appends never wait, and under load a statement carries whatever came in while the
last one was in flight. A caller that stops waiting before its append is taken is not written; one
taken is written all the same (it may have committed), as a lone statement whose answer was lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import asyncpg

from chatkeep.stores.sql import statements
from chatkeep.stores.sql.connections import Compiled
from chatkeep.tasks import fail_waiting

APPEND_ONE = Compiled(statements.APPEND_ONE_IF_UNCHANGED)
APPEND_GROUP = Compiled(statements.APPEND_GROUP_IF_UNCHANGED)

# Statements in flight at once. Each holds one connection for its round trip; the rest of the
# pool serves reads. More senders make smaller groups: more statements for the same appends.
SENDERS = 2
# An append of this many messages already shares one statement among them: it goes at once, alone.
MANY = 10

Connection = Callable[[], AbstractAsyncContextManager[Any]]


@dataclass(eq=False)
class Pending:
    """One conversation's append: its key, the row version it was planned on and its new counters
    (`statements.GROUP_FIELDS`), and its messages, one list a field (`statements.MESSAGE_FIELDS`)."""

    counters: dict[str, Any]
    messages: dict[str, list[Any]]
    answer: asyncio.Future[int | None | _Alone]

    @property
    def key(self) -> tuple[str, str]:
        return self.counters["tenant"], self.counters["cid"]

    @property
    def size(self) -> int:
        return len(self.messages["seq"])


class _Alone:
    """The answer to an append whose group was refused: send it again by itself."""


ALONE = _Alone()


class AppendGroups:
    def __init__(self, connection: Connection, senders: int = SENDERS) -> None:
        self._connection = connection
        self._senders = senders
        self._sending = 0
        self._waiting: list[Pending] = []
        self._tasks: set[asyncio.Task[None]] = set()  # referenced until done

    async def write(self, counters: dict[str, Any], messages: dict[str, list[Any]]) -> int | None:
        """Write one conversation's append. Returns its row's new version, or None when the row was
        no longer the version the append was planned on (nothing was written). Raises what
        PostgreSQL or the connection raised; a lost connection leaves the write unknown."""
        pending = Pending(counters, messages, asyncio.get_running_loop().create_future())
        if pending.size < MANY and (self._waiting or self._sending >= self._senders):
            self._waiting.append(pending)
            self._start_sender()
            answer = await pending.answer
            if not isinstance(answer, _Alone):
                return answer
        self._sending += 1
        try:
            (answer,) = await self._execute([pending])
            return answer
        finally:
            self._sending -= 1
            self._start_sender()

    def _start_sender(self) -> None:
        if self._waiting and self._sending < self._senders:
            self._sending += 1
            task = asyncio.create_task(self._send())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self) -> None:
        """Send the appends waiting, as long as some are."""
        try:
            while group := self._take():
                await self._send_group(group)
        finally:
            self._sending -= 1

    def _take(self) -> list[Pending]:
        """The appends waiting whose callers still wait, one a conversation (a second append to one
        goes in the next group: one statement updates a row once)."""
        group: list[Pending] = []
        later: list[Pending] = []
        keys: set[tuple[str, str]] = set()
        for pending in self._waiting:
            if pending.answer.done():
                continue
            if pending.key in keys:
                later.append(pending)
            else:
                keys.add(pending.key)
                group.append(pending)
        self._waiting = later
        return group

    async def _send_group(self, group: list[Pending]) -> None:
        answers: Sequence[int | None | _Alone]
        try:
            try:
                answers = await self._execute(group)
            except asyncpg.PostgresError:
                if len(group) == 1:
                    raise
                answers = [ALONE] * len(group)
        except BaseException as exc:
            fail_waiting((pending.answer for pending in group), exc)
            if not isinstance(exc, Exception):
                raise
            return
        for pending, answer in zip(group, answers, strict=True):
            if not pending.answer.done():
                pending.answer.set_result(answer)

    async def _execute(self, group: Sequence[Pending]) -> list[int | None]:
        """Each append's row version after the statement, or None where its row had moved (a
        conversation's messages are all written, or none)."""
        if len(group) == 1 and group[0].size == 1:
            (pending,) = group
            statement = APPEND_ONE
            params = {
                **pending.counters,
                **{f"new_{name}": values[0] for name, values in pending.messages.items()},
            }
        else:
            statement = APPEND_GROUP
            params = {f"group_{name}": [p.counters[name] for p in group] for name in statements.GROUP_FIELDS}
            params["group_n"] = list(range(len(group)))
            params["new_n"] = [n for n, p in enumerate(group) for _ in range(p.size)]
            for name in statements.MESSAGE_FIELDS:
                params[f"new_{name}"] = [value for p in group for value in p.messages[name]]
        async with self._connection() as conn:
            rows = await conn.fetch(statement.sql, *statement.args(params))
        if statement is APPEND_ONE:
            return [rows[0]["row_version"] if rows else None]
        written = {row["n"]: row["row_version"] for row in rows}
        return [written.get(n) for n in range(len(group))]
