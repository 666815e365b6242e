"""Stopping a background task works even when a cancellation is swallowed on the way."""

from __future__ import annotations

import asyncio

from chatkeep import tasks


async def test_a_task_that_swallows_a_cancellation_is_still_stopped() -> None:
    rounds = 0

    async def stubborn() -> None:
        nonlocal rounds
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                rounds += 1
                if rounds == 1:
                    continue  # what a library does when its own timeout fires at the same moment
                raise

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    await asyncio.wait_for(tasks.stop(task, patience=0.05), 5)
    assert task.done() and rounds == 2


async def test_a_loop_sees_it_is_stopping_after_a_swallowed_cancellation() -> None:
    passes = 0

    async def loop() -> None:
        nonlocal passes
        while not tasks.stopping():
            passes += 1
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                pass  # swallowed: only `stopping()` tells the loop now

    task = asyncio.create_task(loop())
    await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.wait_for(task, 5)
    assert passes > 0


async def test_stopping_nothing_or_a_finished_task_is_harmless() -> None:
    await tasks.stop(None)
    done = asyncio.create_task(asyncio.sleep(0))
    await done
    await tasks.stop(done)
