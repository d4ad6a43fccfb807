"""Unit tests of sync_server._eager.start_eagerly and start_eagerly_as (no network)."""

from __future__ import annotations

import asyncio

import pytest

from sync_server._eager import start_eagerly, start_eagerly_as


async def test_a_coroutine_that_never_waits_runs_at_once_without_a_task() -> None:
    seen: list[str] = []

    async def job() -> None:
        seen.append("ran")

    assert start_eagerly(job()) is None
    assert seen == ["ran"]  # before any await of ours


async def test_a_coroutine_that_waits_is_finished_by_a_task() -> None:
    gate = asyncio.Event()
    seen: list[str] = []

    async def job() -> None:
        seen.append("started")
        await gate.wait()  # a future
        await asyncio.sleep(0)  # a bare yield
        await gate.wait()  # already set: no wait
        seen.append("finished")

    task = start_eagerly(job())
    assert task is not None and seen == ["started"]
    gate.set()
    await asyncio.wait_for(task, 1)
    assert seen == ["started", "finished"]


async def test_errors_reach_the_caller_or_the_task() -> None:
    async def fails_now() -> None:
        raise ValueError("now")

    with pytest.raises(ValueError, match="now"):
        start_eagerly(fails_now())

    gate = asyncio.Event()

    async def fails_later() -> None:
        await gate.wait()
        raise KeyError("later")

    task = start_eagerly(fails_later())
    assert task is not None
    gate.set()
    with pytest.raises(KeyError):
        await task


async def test_cancelling_the_task_cancels_the_coroutine() -> None:
    cleaned: list[bool] = []

    async def job() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.append(True)

    task = start_eagerly(job())
    assert task is not None
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned == [True]


async def test_started_from_a_callback_the_first_steps_run_as_part_of_the_given_task() -> None:
    """A protocol callback (no task running) starts a request as part of the connection's
    reading task: `asyncio.timeout` and `current_task` work in its first steps, and the
    callback leaves no task current behind it."""
    loop = asyncio.get_running_loop()
    owner = asyncio.current_task()
    assert owner is not None
    seen: list[object] = []
    done = loop.create_future()

    async def job() -> None:
        seen.append(asyncio.current_task())
        async with asyncio.timeout(5):  # refused outside a task
            await asyncio.sleep(0)
        seen.append(asyncio.current_task())  # now the task that finishes it

    def callback() -> None:
        task = start_eagerly_as(owner, job())
        seen.append(asyncio.current_task(loop))
        assert task is not None
        task.add_done_callback(lambda t: done.set_result(t.exception()))

    loop.call_soon(callback)
    assert await asyncio.wait_for(done, 1) is None
    assert seen[0] is owner
    assert seen[1] is None  # left as it was
    assert seen[2] is not None and seen[2] is not owner
