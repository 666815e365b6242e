"""Stopping background tasks for sure.

A task asked to stop is cancelled; but a library that catches the cancellation on the way (and some
do, for instance a timeout that fires at the moment the cancellation arrives) leaves the task
running, and whoever awaited it waits forever. `stop` asks again until the task is done, and loops
that run for the life of a service check `stopping()` between rounds.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any


async def stop(task: asyncio.Task[object] | asyncio.Task[None] | None, *, patience: float = 1.0) -> None:
    """Cancel `task` and wait for it to end, cancelling it again every `patience` seconds if a
    cancellation was swallowed. Its result or error is dropped: it is being stopped."""
    if task is None:
        return
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=patience)
    if not task.cancelled():
        task.exception()  # retrieved, so that it is not reported as never retrieved


def stopping() -> bool:
    """Whether the current task has been asked to stop (a swallowed cancellation still counts)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class Background(ABC):
    """A part of the service that runs as one task from `start()` until `stop()`."""

    task_name = "chatkeep-background"
    _task: asyncio.Task[None] | None = None

    @abstractmethod
    async def run(self) -> None:
        """The task's body; loops check `stopping()` between rounds."""

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=self.task_name)

    async def stop(self) -> None:
        await stop(self._task)
        self._task = None


def fail_waiting(answers: Iterable[asyncio.Future[Any]], error: BaseException) -> None:
    """Pass what stopped a task working for others (one sending their writes together) to those
    still waiting for an answer: an error as their error; a cancellation (the loop is closing) by
    cancelling them. The task re-raises a cancellation itself."""
    for answer in answers:
        if answer.done():  # answered, or its caller stopped waiting
            continue
        if isinstance(error, Exception):
            answer.set_exception(error)
        else:
            answer.cancel()
