"""The realtime WebSocket paths served straight from the transport, without the ASGI hop.

uvicorn's HTTP protocol (our `GuardedHttpToolsProtocol`, http_guard.py) hands the upgrade
request of a realtime path (`/v1/realtime`, `/v3/wsconnect`) to `RealtimeWebSocket`, an
asyncio protocol on the same transport (so the same port, TLS, connection cap and shutdown).
It does the handshake with websockets' sans-I/O `ServerProtocol`. It cuts the client's bytes
into frames itself and reads a final, masked text or binary frame (every request) on the
spot, unmasked by websockets' C helper (5 of an `item_get`'s 37 µs of CPU, saved). Every
other frame goes whole to `ServerProtocol`, which parses it, answers pings and closes, and
enforces the protocol's rules and the message size limit (1009). Then it runs the path's
front door (`ws.Door`) as one task, which receives messages from a buffer this protocol
fills and hands frames to the transport itself: no ASGI `receive` / `send` dicts, no
Starlette `WebSocket`, no task per message.

- Reading: messages wait in a buffer while the door does not read (its outbox is not
  writable, or it has too many requests running); the transport stops reading while any do.
  While the door waits in `receive`, the first message of each read is offered to its
  `on_message` first, which may start the request right there (no task wake-up, no turn
  of the loop before the request runs).
- Writing: the frames of one turn of the loop go to the transport together at its end, or
  once a request has been started (by `on_message`, or by the door, which flushes): one send
  for a reply and the event before it, or for a burst of events to one subscriber (at most
  64 frames wait), with one callback per turn for every connection; a text frame is
  encoded once for all the subscribers an event goes to in a row. While the transport is
  paused (its buffer is over the high-water mark) a write waits for `resume_writing` (and
  `send_*_nowait` refuses), so the door's outbox queues behind it.
- Keepalive: a ping every `ws_ping_interval` seconds; no pong within `ws_ping_timeout`: the
  connection is closed (1011).
- Shutdown (uvicorn's, after the drain): a connection still open is closed with 1012.
"""

from __future__ import annotations

import asyncio
import logging
import random
import struct
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any, cast

from websockets.exceptions import InvalidState
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

from sync_sdk.framing import FIN_BINARY, FIN_TEXT, FrameCutter, apply_mask, frame_head

from .ws import Disconnected, Door

log = logging.getLogger("sync_server.ws")
access_log = logging.getLogger("uvicorn.error")  # where uvicorn logged the same lines

_CLOSE_TIMEOUT = 10.0  # seconds to wait for the client's answer to our close frame
_MAX_QUEUED_FRAMES = 64  # frames queued in one turn before they go to the transport at once


def _binary_frame(data: bytes) -> bytes:
    return frame_head(FIN_BINARY, len(data)) + data


# The last text frame built, by the identity of its text: fan-out sends one event's text to
# every subscriber in a row, and it is encoded once for them all.
_last_text: tuple[str, bytes] = ("", b"")


def _text_frame(data: str) -> bytes:
    global _last_text
    last = _last_text
    if last[0] is data:
        return last[1]
    payload = data.encode()
    frame = frame_head(FIN_TEXT, len(payload)) + payload
    _last_text = (data, frame)
    return frame


class _TurnEnd:
    """The connections of one loop with frames queued in this turn: written out together
    at its end, with one callback for them all (a fan-out queues a frame on thousands)."""

    __slots__ = ("_waiting",)

    def __init__(self) -> None:
        self._waiting: list[RealtimeWebSocket] = []

    def add(self, conn: RealtimeWebSocket) -> None:
        if not self._waiting:
            conn._loop.call_soon(self._write_out)  # (no reference to the loop: a weak key)
        self._waiting.append(conn)

    def _write_out(self) -> None:
        waiting, self._waiting = self._waiting, []
        for conn in waiting:
            conn.flush()


_turn_ends: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _TurnEnd] = (
    weakref.WeakKeyDictionary()
)


def _turn_end(loop: asyncio.AbstractEventLoop) -> _TurnEnd:
    turn_end = _turn_ends.get(loop)
    if turn_end is None:
        turn_end = _turn_ends[loop] = _TurnEnd()
    return turn_end


class RealtimeWebSocket(asyncio.Protocol):
    """One realtime WebSocket connection (see the module docstring); the door's
    `RealtimeSocket`."""

    def __init__(
        self,
        door: Door,
        *,
        connections: set[Any],
        tasks: set[asyncio.Task[None]],
        default_headers: list[tuple[bytes, bytes]],
        max_size: int | None,
        ping_interval: float | None,
        ping_timeout: float | None,
        client: tuple[str, int] | None,
        server: tuple[str, int | None] | None,
        secure: bool,
    ) -> None:
        self._door = door
        self._connections = connections
        self._tasks = tasks
        self._default_headers = default_headers
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._client = client
        self._server = server
        self._secure = secure
        self._host = ""
        self._path = ""
        self.conn = ServerProtocol(max_size=max_size, logger=log)
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self._loop = asyncio.get_running_loop()
        self._task: asyncio.Task[None] | None = None
        # reading
        self.on_message: Callable[[str | bytes], bool] | None = None
        self._offer = False  # this read's first message may go to `on_message`
        self._messages: deque[str | bytes] = deque()
        self._receiver: asyncio.Future[None] | None = None
        self._fragments: list[bytes] = []
        self._fragments_text = False
        self._cutter = FrameCutter(max_size)
        self._read_paused = False
        # writing: frames sent in one turn of the loop leave in one write (see `_write_frame`)
        self._out: list[bytes] = []
        self._turn_end = _turn_end(self._loop)
        self._write_paused = False
        self._writable: asyncio.Future[None] | None = None
        # state
        self._open = False  # the handshake succeeded
        self._close_sent = False
        self._close_timer: asyncio.TimerHandle | None = None
        self._gone: int | None = None  # the close code once nothing more can be received
        # keepalive
        self._ping_timer: asyncio.TimerHandle | None = None
        self._pong_timer: asyncio.TimerHandle | None = None
        self._ping_payload: bytes | None = None
        self._ping_sent_at = 0.0
        self._ping_rtt = 0.0

    # ---- RealtimeSocket ----------------------------------------------------------------
    @property
    def secure(self) -> bool:
        return self._secure

    @property
    def host(self) -> str:
        return self._host

    async def receive(self) -> str | bytes:
        messages = self._messages
        while not messages:
            if self._gone is not None:
                raise Disconnected(self._gone)
            # Woken with no value: a message taken from the buffer is handled, while one
            # left there when this wait is cancelled (the drain) stays unread.
            receiver = self._loop.create_future()
            self._receiver = receiver
            try:
                await receiver
            finally:
                self._receiver = None
        message = messages.popleft()
        if not messages and self._read_paused and self._gone is None:
            self._read_paused = False
            self.transport.resume_reading()
        return message

    async def send_text(self, data: str) -> None:
        if self._write_paused:
            await self._wait_writable()
        self._write_frame(_text_frame(data))

    async def send_bytes(self, data: bytes) -> None:
        if self._write_paused:
            await self._wait_writable()
        self._write_frame(_binary_frame(data))

    def send_text_nowait(self, data: str) -> bool:
        if self._write_paused:
            return False
        self._write_frame(_text_frame(data))
        return True

    def send_bytes_nowait(self, data: bytes) -> bool:
        if self._write_paused:
            return False
        self._write_frame(_binary_frame(data))
        return True

    async def close(self, code: int) -> None:
        if self._close_sent or self.transport.is_closing():
            return
        try:
            self.conn.send_close(code)
        except InvalidState:  # the client closed first
            return
        self._close_sent = True
        self._flush_protocol()
        self._lost(code)
        if self._read_paused:  # read on, for the client's answer
            self._read_paused = False
            self.transport.resume_reading()
        self._close_timer = self._loop.call_later(_CLOSE_TIMEOUT, self.transport.close)

    # ---- asyncio.Protocol --------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._connections.discard(self)
        self._stop_keepalive()
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        self._lost(1006 if self.conn.close_rcvd is None else self.conn.close_rcvd.code)
        # asyncio never resumes writing on a transport lost while paused: wake the writer.
        self._write_paused = False
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def eof_received(self) -> bool | None:
        return None  # close the transport

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        writable = self._writable
        if writable is not None:
            self._writable = None
            if not writable.done():
                writable.set_result(None)

    def data_received(self, data: bytes) -> None:
        self._offer = True
        if self._open:
            self._split(data)
        else:
            self._parse(data)

    def _split(self, data: bytes) -> None:
        """Read a final, masked text or binary frame (every request) here; give any other
        frame whole to websockets' parser (see `sync_sdk.framing`)."""
        buffer, spans, over = self._cutter.cut(data)
        for start, body, stop in spans:
            first = buffer[start]
            if (
                (first == FIN_TEXT or first == FIN_BINARY)
                and buffer[start + 1] & 0x80  # masked, as a client's frame must be
                and not self._fragments
                and self.conn.state is State.OPEN
            ):
                mask = buffer[body - 4 : body]
                self._message(apply_mask(buffer[body:stop], mask), first == FIN_TEXT)
            else:
                self._parse(buffer[start:stop])
            if self.transport.is_closing():
                return
        if over >= 0:  # a frame over max_size: websockets refuses it (1009) and parses the rest
            self._parse(buffer[over:])

    def _parse(self, data: bytes) -> None:
        """Give bytes to websockets' parser: the handshake, and frames other than a final,
        masked text or binary one."""
        conn = self.conn
        conn.receive_data(data)
        for event in conn.events_received():
            if isinstance(event, Frame):
                self._frame(event)
            elif isinstance(event, Request):
                self._handshake(event)
        if conn.parser_exc is not None or conn.state is State.CLOSED:
            # A protocol error (websockets queued its close frame: 1009 for a message over
            # the size limit, 1002 for a bad frame) or the end of the closing handshake.
            self._flush_protocol()
            self._lost(1006 if conn.close_sent is None else conn.close_sent.code)
            self.transport.close()
        elif self._open:
            self._flush_protocol()  # pongs, the answer to a close

    # ---- uvicorn's server --------------------------------------------------------------
    def shutdown(self) -> None:
        """uvicorn's shutdown: close what the drain left open (1012: reconnect elsewhere)."""
        self._stop_keepalive()
        if not self._close_sent and self._open and not self.transport.is_closing():
            try:
                self.conn.send_close(1012)
            except InvalidState:
                pass
            self._flush_protocol()
        self._lost(1012)
        self.transport.close()

    # ---- internals ---------------------------------------------------------------------
    def _handshake(self, request: Request) -> None:
        self._path = request.path
        self._host = request.headers.get("Host") or (
            f"{self._server[0]}:{self._server[1]}" if self._server else ""
        )
        response = self.conn.accept(request)
        client = f"{self._client[0]}:{self._client[1]}" if self._client else "-"
        if response.status_code != 101:
            access_log.info('%s - "WebSocket %s" %d', client, request.path, response.status_code)
            self.conn.send_response(response)
            self._flush_protocol()
            self._lost(1006)
            self.transport.close()
            return
        access_log.info('%s - "WebSocket %s" [accepted]', client, request.path)
        headers = response.headers
        for name in ("Server", "Date"):  # uvicorn's (kept current by its server) instead
            if name in headers:
                del headers[name]
        for raw_name, raw_value in self._default_headers:
            headers[raw_name.decode("latin-1")] = raw_value.decode("latin-1")
        self.conn.send_response(response)
        self._flush_protocol()
        self._open = True
        self._start_keepalive()
        task = self._loop.create_task(self._run())
        self._task = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self) -> None:
        try:
            await self._door(self)
        except Exception:
            log.exception("realtime connection failed", extra={"path": self._path})
            if not self._close_sent:
                await self.close(1011)
        if self._close_timer is None:  # no closing handshake under way
            self._lost(1006)
            self.transport.close()

    def _frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            if frame.fin:
                self._message(bytes(frame.data), opcode is Opcode.TEXT)
            else:
                self._fragments = [bytes(frame.data)]
                self._fragments_text = opcode is Opcode.TEXT
        elif opcode is Opcode.CONT:
            self._fragments.append(bytes(frame.data))
            if frame.fin:
                data, self._fragments = b"".join(self._fragments), []
                self._message(data, self._fragments_text)
        elif opcode is Opcode.PONG:
            self._pong(bytes(frame.data))
        elif opcode is Opcode.CLOSE:
            if self._close_sent:  # the client answered our close: done
                if self._close_timer is not None:
                    self._close_timer.cancel()
                    self._close_timer = None
                self._flush_protocol()
                self.transport.close()
            else:  # the client closes: websockets queued the answer
                rcvd = self.conn.close_rcvd
                self._lost(1005 if rcvd is None else rcvd.code)
                self._flush_protocol()
                self.transport.close()
        # PING: websockets queued the pong (sent by data_received)

    def _message(self, data: bytes, text: bool) -> None:
        if self._close_sent or self._gone is not None:
            return  # past our close: read on only for the client's answer
        message: str | bytes
        if text:
            try:
                message = data.decode()
            except UnicodeDecodeError:
                log.warning("closing %s: invalid UTF-8 in a text frame", self._client)
                self.conn.fail(1007, "invalid UTF-8")
                self._close_sent = True
                self._flush_protocol()
                self._lost(1007)
                self.transport.close()
                return
        else:
            message = data
        receiver = self._receiver
        if self._offer and receiver is not None and not self._messages:
            # The door waits for this message: it may take it here (a turn of the loop and
            # a task wake-up sooner), one per read so a burst still gets its fair turns.
            self._offer = False
            on_message = self.on_message
            if on_message is not None and on_message(message):
                self.flush()  # its reply, if answered without waiting
                return
        self._messages.append(message)
        if receiver is not None:
            self._receiver = None
            if not receiver.done():
                receiver.set_result(None)
        elif not self._read_paused:  # the door is not reading: neither is the transport
            self._read_paused = True
            self.transport.pause_reading()

    def _lost(self, code: int) -> None:
        """Nothing more will be received: `receive` raises Disconnected once the buffer is
        empty."""
        if self._gone is None:
            self._gone = code
        receiver = self._receiver
        if receiver is not None:
            self._receiver = None
            if not receiver.done():
                receiver.set_result(None)

    def _flush_protocol(self) -> None:
        """Write what the protocol has to send (pongs, closes), after the frames waiting."""
        data = self.conn.data_to_send()
        if data:
            out = b"".join(data)
            if out:
                self._out.append(out)
        self.flush()

    def _write_frame(self, frame: bytes) -> None:
        """Queue a message frame; the frames queued in one turn of the loop (a reply and the
        event before it, a burst of events for one subscriber) leave together, at the end
        of the turn (or when the front door flushes, its request answered): one send instead
        of one per frame, and fewer reads for the client."""
        if self._close_sent or self._gone is not None or self.transport.is_closing():
            raise Disconnected(self._gone or 1006)
        out = self._out
        out.append(frame)
        if len(out) == 1:
            self._turn_end.add(self)
        elif len(out) >= _MAX_QUEUED_FRAMES:  # to the transport, whose buffer pauses writers
            self.flush()

    def flush(self) -> None:
        """Write the frames queued (`RealtimeSocket.flush`)."""
        out = self._out
        if out:
            data = out[0] if len(out) == 1 else b"".join(out)
            out.clear()
            if not self.transport.is_closing():
                self.transport.write(data)

    async def _wait_writable(self) -> None:
        while self._write_paused and not self.transport.is_closing():
            if self._writable is None or self._writable.done():
                self._writable = self._loop.create_future()
            await self._writable

    # ---- keepalive ---------------------------------------------------------------------
    def _start_keepalive(self) -> None:
        if self._ping_interval:
            self._schedule_ping()

    def _stop_keepalive(self) -> None:
        if self._ping_timer is not None:
            self._ping_timer.cancel()
            self._ping_timer = None
        if self._pong_timer is not None:
            self._pong_timer.cancel()
            self._pong_timer = None
        self._ping_payload = None

    def _schedule_ping(self) -> None:
        assert self._ping_interval is not None
        delay = max(0.0, self._ping_interval - self._ping_rtt)
        self._ping_timer = self._loop.call_later(delay, self._send_ping)

    def _send_ping(self) -> None:
        self._ping_timer = None
        if self._close_sent or self.transport.is_closing():
            return
        self._ping_payload = struct.pack("!I", random.getrandbits(32))
        self._ping_sent_at = self._loop.time()
        self.conn.send_ping(self._ping_payload)
        self._flush_protocol()
        if self._ping_timeout:
            self._pong_timer = self._loop.call_later(self._ping_timeout, self._ping_timed_out)
        else:
            self._schedule_ping()

    def _pong(self, data: bytes) -> None:
        if self._ping_payload is None or data != self._ping_payload:
            return  # unsolicited, or stale
        self._ping_rtt = self._loop.time() - self._ping_sent_at
        self._ping_payload = None
        if self._pong_timer is not None:
            self._pong_timer.cancel()
            self._pong_timer = None
            self._schedule_ping()

    def _ping_timed_out(self) -> None:
        self._pong_timer = None
        self._ping_payload = None
        if self._close_sent or self.transport.is_closing():
            return
        log.info("closing %s: no pong in %.0f s", self._client, self._ping_timeout)
        self.conn.fail(1011, "keepalive ping timeout")
        self._close_sent = True
        self._flush_protocol()
        self._lost(1011)
        self.transport.close()
