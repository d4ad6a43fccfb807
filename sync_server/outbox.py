"""The frames on their way to one client, in order, for every front door.

A frame goes out from the sender's own frame when nothing is queued (the usual case: no task
switch, which is what makes fan-out cheap); otherwise it joins a bounded queue, drained by a
task that exists only while frames are queued, so fan-out never waits on a slow client and
an idle connection holds no task. A client that falls too far behind is disconnected
(CLOSE_SLOW_CONSUMER) and catches up from the event log when it reconnects; a failed write
drops the connection rather than go on with a gap in what the client received.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

from ._eager import start_eagerly

log = logging.getLogger("sync_server.outbox")

CLOSE_SLOW_CONSUMER = 4008
CLOSE_INTERNAL_ERROR = 1011

Frame = TypeVar("Frame", str, bytes)
Write = Callable[[Frame], Coroutine[Any, Any, None]]
CloseSocket = Callable[[int], Coroutine[Any, Any, None]]


class Outbox(Generic[Frame]):
    """Frames to one client (see the module docstring). `write` puts one frame on the socket;
    `close_socket` closes it with a WebSocket close code."""

    __slots__ = (
        "_broken",
        "_close_code",
        "_close_socket",
        "_drainer",
        "_queue",
        "_socket_closed",
        "_write",
        "_writing",
        "closed",
        "max_frames",
        "name",
    )

    def __init__(
        self, write: Write[Frame], close_socket: CloseSocket, *, max_frames: int, name: str
    ) -> None:
        self._write: Write[Frame] = write
        self._close_socket = close_socket
        self.max_frames = max_frames
        self.name = name  # for the log
        self._queue: deque[Frame] = deque()
        self._writing = False  # a write is in progress (the drain task or the fast path)
        self._drainer: asyncio.Task[None] | None = None  # exists only while frames are queued
        self.closed = False  # no more frames are accepted
        self._broken = False  # the socket failed: nothing more can be sent
        self._socket_closed = False
        self._close_code: int | None = None

    def send(self, frame: Frame) -> None:
        """Send a frame, in order: written at once when nothing is queued, else queued."""
        if self.closed or self._broken:
            return
        if not self._writing and not self._queue:
            self._write_now(frame)
            return
        if len(self._queue) >= self.max_frames:
            log.warning(
                "connection %s is too slow (%d frames queued); closing it",
                self.name,
                len(self._queue),
            )
            self.close(CLOSE_SLOW_CONSUMER)
            return
        self._queue.append(frame)
        self._kick()

    def close(self, code: int) -> None:
        """Close after what is queued has been sent (already-queued frames say why)."""
        if self._close_code is None:
            self._close_code = code
        self.closed = True
        self._kick()

    def fail(self) -> None:
        """Drop the connection at once (e.g. a write failed, or storage did mid-catch-up): the
        client reconnects and catches up from the event log."""
        if self._broken:
            return
        self._broken = True
        self._queue.clear()
        self.close(CLOSE_INTERNAL_ERROR)  # the drain closes the socket once no write is running

    async def flush(self, timeout: float) -> None:
        """Wait (bounded) for queued frames to go out, e.g. before the handler returns."""
        drainer = self._drainer
        if drainer is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(drainer), timeout)

    def _write_now(self, frame: Frame) -> None:
        """Write at once when the transport takes the bytes; if it is paused, a task finishes
        the write and then drains the queue."""
        try:
            task = start_eagerly(self._write(frame))
        except Exception:
            self.fail()
            return
        if task is not None:
            self._writing = True
            self._drainer = task
            task.add_done_callback(self._resumed)

    def _resumed(self, task: asyncio.Task[None]) -> None:
        self._writing = False
        self._drainer = None
        if task.cancelled() or task.exception() is not None:
            self.fail()
        elif self._queue or self._close_code is not None:
            self._kick()

    def _kick(self) -> None:
        """Start draining unless a write is already in progress (it kicks us after)."""
        if self._drainer is None and not self._writing:
            self._drainer = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        """Send every queued frame in order, then close the socket if asked; then exit (an idle
        connection keeps no task)."""
        self._writing = True
        try:
            while self._queue and not self._broken:
                await self._write(self._queue.popleft())
        except Exception:
            self.fail()
        finally:
            self._writing = False
            self._drainer = None
        if self._close_code is not None and not self._socket_closed:
            self._socket_closed = True
            with contextlib.suppress(Exception):
                await self._close_socket(self._close_code)
