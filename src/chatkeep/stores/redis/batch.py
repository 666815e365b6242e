"""Script calls sent together: on a standalone server, the calls that concurrent writes make while
the event loop runs one round of ready tasks go out as one pipeline. Most of what a call costs this
process is the client's work per command (a connection from the pool, a timeout, a reply read on
its own), which a pipeline pays once for all. Each call is still its own EVALSHA: Redis runs them one
after the other, and each caller gets its own answer or error, as if it had been sent alone."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions as rexc
from redis.commands.core import AsyncScript

from chatkeep.tasks import fail_waiting


async def run_script(client: Any, script: AsyncScript, keys: Sequence[Any], args: Sequence[Any]) -> Any:
    """One script call, sent alone."""
    try:
        return await client.evalsha(script.sha, len(keys), *keys, *args)
    except rexc.NoScriptError:  # the server's script cache was flushed (or it is another server now)
        script.sha = await client.script_load(script.script)
        return await client.evalsha(script.sha, len(keys), *keys, *args)


@dataclass
class Call:
    script: AsyncScript
    keys: Sequence[Any]
    args: Sequence[Any]
    answer: asyncio.Future[Any]


class ScriptBatches:
    """Sends the script calls made meanwhile, once the loop gets to it; a lone call goes as is."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._waiting: list[Call] = []
        self._sending: set[asyncio.Task[None]] = set()  # referenced until done

    async def call(self, script: AsyncScript, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append(Call(script, keys, args, answer))
        if len(self._waiting) == 1:  # the first since the last send: a send is due for it
            task = asyncio.create_task(self._send())
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
        return await answer

    async def _send(self) -> None:
        # A call whose caller stopped waiting before it was sent is not sent, as it would not have been alone.
        calls = [call for call in self._waiting if not call.answer.done()]
        self._waiting = []
        if not calls:
            return
        try:
            if len(calls) == 1:
                call = calls[0]
                answer = await run_script(self._client, call.script, call.keys, call.args)
                if not call.answer.done():
                    call.answer.set_result(answer)
            else:
                await self._send_together(calls)
        except BaseException as exc:
            fail_waiting((call.answer for call in calls), exc)
            if not isinstance(exc, Exception):
                raise

    async def _send_together(self, calls: list[Call]) -> None:
        pipe = self._client.pipeline(transaction=False)
        for call in calls:
            pipe.evalsha(call.script.sha, len(call.keys), *call.keys, *call.args)
        answers = await pipe.execute(raise_on_error=False)
        for call, answer in zip(calls, answers, strict=True):
            if call.answer.done():
                continue
            if isinstance(answer, rexc.NoScriptError):  # sent again alone, which loads the script
                try:
                    answer = await run_script(self._client, call.script, call.keys, call.args)
                except Exception as exc:
                    answer = exc
                if call.answer.done():
                    continue
            if isinstance(answer, Exception):
                call.answer.set_exception(answer)
            else:
                call.answer.set_result(answer)
