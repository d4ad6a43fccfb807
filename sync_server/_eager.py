"""Run a coroutine eagerly: in the caller's frame until it first has to wait.

Most requests and most frame writes finish without waiting (a cached check, an inline SQLite
read, a write the transport takes at once). Starting them eagerly saves a task and a loop turn
each; only the ones that do wait get a task to finish them (what Python 3.12's eager task
factory does, for 3.11)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


def start_eagerly(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
    """Step `coro` now; return None if it finished, else the task that finishes it.
    An exception raised before the first wait propagates to the caller."""
    try:
        waiting_on = coro.send(None)
    except StopIteration:
        return None
    return asyncio.get_running_loop().create_task(_finish(coro, waiting_on))


def start_eagerly_as(
    task: asyncio.Task[Any], coro: Coroutine[Any, Any, None]
) -> asyncio.Task[None] | None:
    """`start_eagerly` from a callback, where no task runs: the coroutine's first steps run as
    part of `task` (for `asyncio.current_task()` and `asyncio.timeout`), as they would if
    `task` itself called `start_eagerly`."""
    loop = task.get_loop()
    asyncio.tasks._enter_task(loop, task)
    try:
        return start_eagerly(coro)
    finally:
        asyncio.tasks._leave_task(loop, task)


async def _finish(coro: Coroutine[Any, Any, None], waiting_on: Any) -> None:
    """Drive a started coroutine as a task would: wait for what it waits on, then resume it."""
    while True:
        try:
            if waiting_on is None:
                await asyncio.sleep(0)  # a bare `yield`: just give up the turn
            else:
                # Take over the future the coroutine yielded, as Task.__step does: clear
                # its "yielded by an await" mark, or awaiting it again is refused.
                waiting_on._asyncio_future_blocking = False
                await waiting_on
        except BaseException as exc:  # cancellation included: let the coroutine handle it
            try:
                waiting_on = coro.throw(exc)
            except StopIteration:
                return
            continue
        try:
            waiting_on = coro.send(None)
        except StopIteration:
            return
