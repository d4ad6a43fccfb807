"""Unit tests of sync_server._eager.start_eagerly (no network)."""

from __future__ import annotations

import asyncio

import pytest

from sync_server._eager import start_eagerly


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
