"""The frames on their way to one client, in order, for every front door.

A frame goes out from the sender's own frame when nothing is queued (the usual case: no task
switch, which is what makes fan-out cheap); otherwise it joins a queue, drained by a task
that exists only while frames are queued, so fan-out never waits on a slow client and an
idle connection holds no task. The queue is bounded in frames and in bytes (characters for
text frames): a client that falls that far behind is disconnected (CLOSE_SLOW_CONSUMER) and
catches up from the event log when it reconnects. Front doors stop reading requests while
the queue holds more than half its bytes (`writable()`), so a client that asks for more
than it reads is slowed down before any work is done for it. A failed write drops the
connection rather than go on with a gap in what the client received.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

from ._eager import start_eagerly, start_eagerly_as
from .config import Limits
from .metrics import Metrics

log = logging.getLogger("sync_server.outbox")

CLOSE_SLOW_CONSUMER = 4008
CLOSE_INTERNAL_ERROR = 1011
CLOSE_SERVICE_RESTART = 1012  # the node is draining: reconnect now, to another node
_TURN = 0.002  # seconds one connection's requests may run back to back

Frame = TypeVar("Frame", str, bytes)
Write = Callable[[Frame], Coroutine[Any, Any, None]]
WriteNowait = Callable[[Frame], bool]
CloseSocket = Callable[[int], Coroutine[Any, Any, None]]


class Outbox(Generic[Frame]):
    """Frames to one client (see the module docstring). `write` puts one frame on the socket;
    `write_nowait` does too, without a coroutine, when the transport takes it at once (False:
    it did not, `write` then waits); `close_socket` closes it with a WebSocket close code."""

    __slots__ = (
        "__weakref__",
        "_broken",
        "_close_code",
        "_close_socket",
        "_drainer",
        "_queue",
        "_queued_bytes",
        "_socket_closed",
        "_writable",
        "_write",
        "_write_nowait",
        "_writing",
        "closed",
        "max_bytes",
        "max_frames",
        "name",
        "on_slow",
    )

    def __init__(
        self,
        write: Write[Frame],
        close_socket: CloseSocket,
        *,
        max_frames: int,
        max_bytes: int,
        name: str,
        on_slow: Callable[[], None] | None = None,
        write_nowait: WriteNowait[Frame] | None = None,
    ) -> None:
        self._write: Write[Frame] = write
        self._write_nowait: WriteNowait[Frame] | None = write_nowait
        self._close_socket = close_socket
        self.max_frames = max_frames
        self.max_bytes = max_bytes
        self._queued_bytes = 0
        self._writable: asyncio.Event | None = None  # exists only while a reader waits
        self.name = name  # for the log
        self.on_slow = on_slow  # told when the client is dropped for being too slow
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
        if len(self._queue) >= self.max_frames or self._queued_bytes + len(frame) > self.max_bytes:
            log.warning(
                "connection %s is too slow (%d frames, %d bytes queued); closing it",
                self.name,
                len(self._queue),
                self._queued_bytes,
            )
            self._queue.clear()
            self._queued_bytes = 0
            self.close(CLOSE_SLOW_CONSUMER)
            if self.on_slow is not None:
                self.on_slow()
            return
        self._queue.append(frame)
        self._queued_bytes += len(frame)
        self._kick()

    @property
    def queued_frames(self) -> int:
        return len(self._queue)

    @property
    def is_writable(self) -> bool:
        """The queue holds at most half its byte limit (or the outbox closed)."""
        return self._queued_bytes <= self.max_bytes // 2 or self.closed

    async def writable(self) -> None:
        """Return once `is_writable`."""
        while not self.is_writable:
            if self._writable is None:
                self._writable = asyncio.Event()
            await self._writable.wait()

    def close(self, code: int) -> None:
        """Close after what is queued has been sent (already-queued frames say why)."""
        if self._close_code is None:
            self._close_code = code
        self.closed = True
        self._wake_readers()
        self._kick()

    def fail(self) -> None:
        """Drop the connection at once (e.g. a write failed, or storage did mid-catch-up): the
        client reconnects and catches up from the event log."""
        if self._broken:
            return
        self._broken = True
        self._queue.clear()
        self._queued_bytes = 0
        self.close(CLOSE_INTERNAL_ERROR)  # the drain closes the socket once no write is running

    async def flush(self, timeout: float) -> None:
        """Wait (bounded) for queued frames to go out, e.g. before the handler returns."""
        drainer = self._drainer
        if drainer is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(drainer), timeout)

    def _wake_readers(self) -> None:
        if self._writable is not None:
            self._writable.set()
            self._writable = None

    def _write_now(self, frame: Frame) -> None:
        """Write at once when the transport takes the bytes; if it is paused, a task finishes
        the write and then drains the queue."""
        try:
            if self._write_nowait is not None and self._write_nowait(frame):
                return
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
                frame = self._queue.popleft()
                self._queued_bytes -= len(frame)
                if self._queued_bytes <= self.max_bytes // 2:
                    self._wake_readers()
                await self._write(frame)
        except Exception:
            self.fail()
        finally:
            self._writing = False
            self._drainer = None
        if self._close_code is not None and not self._socket_closed:
            self._socket_closed = True
            with contextlib.suppress(Exception):
                await self._close_socket(self._close_code)


def connection_outbox(
    write: Write[Frame],
    close_socket: CloseSocket,
    *,
    limits: Limits,
    metrics: Metrics,
    protocol: str,
    name: str,
    write_nowait: WriteNowait[Frame] | None = None,
) -> Outbox[Frame]:
    """A realtime connection's outbox with the node's limits, counted in its metrics (the
    front door calls `metrics.connection_closed(protocol)` when the connection ends)."""
    outbox = Outbox(
        write,
        close_socket,
        max_frames=limits.max_outbox_frames,
        max_bytes=limits.max_outbox_bytes,
        name=name,
        on_slow=metrics.slow_consumer,
        write_nowait=write_nowait,
    )
    metrics.connection_opened(protocol, outbox)
    return outbox


class Requests:
    """The requests of one connection still running: each starts at once, in arrival order
    (a slow one does not hold up the rest), up to `limit` at a time."""

    __slots__ = ("_turn_started", "limit", "tasks")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.tasks: set[asyncio.Task[None]] = set()
        self._turn_started = 0.0

    def start(
        self, coro: Coroutine[Any, Any, None], *, as_task: asyncio.Task[Any] | None = None
    ) -> None:
        """Run `coro` eagerly (from a callback: as part of `as_task`, see `start_eagerly_as`);
        hold its task if it has to wait."""
        self.keep(start_eagerly(coro) if as_task is None else start_eagerly_as(as_task, coro))

    def keep(self, task: asyncio.Task[None] | None) -> None:
        if task is not None:
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def room(self) -> None:
        """Return once fewer than `limit` requests are running, giving other connections a
        turn of the loop at least every 2 ms of this one's reading: requests that finish
        without waiting (cached checks, inline reads) would otherwise run back to back from a
        client's buffered burst. (Called before reading, so an idle connection's yield costs
        no latency.)"""
        while not self.has_room():
            await asyncio.wait(self.tasks, return_when=asyncio.FIRST_COMPLETED)
        now = time.monotonic()
        if now - self._turn_started > _TURN:
            await asyncio.sleep(0)
            self._turn_started = time.monotonic()

    def has_room(self) -> bool:
        """Fewer than `limit` requests are running."""
        return len(self.tasks) < self.limit

    async def finish(self) -> None:
        """Wait until every running request has been answered."""
        while self.tasks:
            await asyncio.wait(set(self.tasks))

    def cancel(self) -> None:
        for task in list(self.tasks):
            task.cancel()


class Reading:
    """A front door's request-reading loop, which the drain may stop between requests.

        async with conn.reading:
            while ...: read a frame, start its request

    `stop()` (from another task) sets `stopped` and interrupts the loop where it waits
    (for a frame, or for room): a frame is either taken, and its request answered, or left
    unread, and so never applied."""

    __slots__ = ("_task", "stopped")

    def __init__(self) -> None:
        self._task: asyncio.Task[Any] | None = None
        self.stopped = False

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            if self._task is not None:
                self._task.cancel("the node is draining")

    @property
    def task(self) -> asyncio.Task[Any] | None:
        """The task of the reading loop, while it runs."""
        return self._task

    async def __aenter__(self) -> None:
        self._task = asyncio.current_task()
        if self.stopped and self._task is not None:  # stopped before it started
            self._task.cancel("the node is draining")

    async def __aexit__(self, exc_type: type[BaseException] | None, *_: object) -> bool:
        task, self._task = self._task, None
        if exc_type is asyncio.CancelledError and self.stopped and task is not None:
            task.uncancel()
            return True
        return False


def start_request_now(
    reading: Reading,
    outbox: Outbox[Any],
    requests: Requests,
    handle: Callable[[Frame], Coroutine[Any, Any, None]],
    frame: Frame,
) -> bool:
    """From the socket's read (`RealtimeSocket.on_message`): start `handle(frame)` now if the
    reading loop, waiting for a frame, would start it (not stopped, `ready_for_request` would
    not wait), as part of the loop's task. False: leave the frame to the loop."""
    task = reading.task
    if (
        task is None
        or reading.stopped
        or outbox.closed
        or not outbox.is_writable
        or not requests.has_room()
    ):
        return False
    requests.start(handle(frame), as_task=task)
    return True


async def ready_for_request(outbox: Outbox[Any], requests: Requests) -> None:
    """Back-pressure before work: wait until the client has read enough of what it was sent
    and not too many of its requests are running."""
    await outbox.writable()
    await requests.room()
