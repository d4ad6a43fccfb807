"""The client's WebSocket connection: websockets' own, with messages delivered as parsed
and requests written at once.

websockets parses every frame and queues every message for a reader task to take with
`recv()`: a frame object, a queue and a turn of the event loop per message before the
client sees it. `Connection` cuts the bytes into frames itself (`framing.FrameCutter`) and
hands a final text frame's text straight to `on_text`, in the call that read it off the
socket, while nothing waits in that queue; any other frame (binary, fragmented, control,
or any frame while the queue is not empty) goes whole to websockets' parser and queue, so
messages still reach the client in the order they came. websockets keeps everything else:
the handshake (its response is given to it to its last byte, so that the frames after it
are cut from a boundary), TLS, pings, the close handshake, size limits and flow control.

`send_text_now` writes a text frame straight to the transport (masked with a key from the
OS's random source, as websockets does) when nothing stands in the way; otherwise the
caller uses websockets' `send`, which waits for what does.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from websockets.asyncio.client import ClientConnection
from websockets.frames import Frame, Opcode
from websockets.protocol import Event, State

from .framing import FIN_TEXT, FrameCutter, apply_mask, frame_head

_MAX_RESPONSE_HEAD = 64 * 1024  # longer: websockets' own limits refuse it

__all__ = ["Connection"]


class Connection(ClientConnection):
    """A `ClientConnection` that can deliver text messages to `on_text` as they arrive."""

    on_text: Callable[[str], None] | None = None
    """Set it to take text messages from here on; None: every message goes to `recv()`."""
    _in_fragments = False  # a fragmented message is arriving: its frames go to the queue
    _head: bytearray | None = None  # the handshake's response, until its end is in
    _cutter: FrameCutter | None = None  # from the first frame on
    _gave_up = False  # the handshake failed or its response was too long: no cutter

    def data_received(self, data: bytes) -> None:
        cutter = self._cutter
        if cutter is None:
            self._response_received(data)
            return
        buffer, spans, over = cutter.cut(data)
        for start, body, stop in spans:
            if (
                buffer[start] == FIN_TEXT
                and not buffer[start + 1] & 0x80  # unmasked, as a server's frame must be
                and self.on_text is not None
                and not self._in_fragments
                and not len(self.recv_messages.frames)
                and self.protocol.state is State.OPEN
            ):
                try:
                    text = buffer[body:stop].decode()
                except UnicodeDecodeError:
                    pass  # not UTF-8: left to websockets' way, as every message was before
                else:
                    self.on_text(text)
                    continue
            super().data_received(buffer[start:stop])
        if over >= 0:  # a frame over the size limit: websockets refuses it, and parses the rest
            super().data_received(buffer[over:])

    def _response_received(self, data: bytes) -> None:
        """Before the first frame: websockets reads the handshake's response, to its end
        exactly, so that the frames after it are cut from a frame boundary."""
        if self._gave_up:
            super().data_received(data)
            return
        head = self._head = (self._head or bytearray()) + data
        end = head.find(b"\r\n\r\n")
        if end < 0:
            if len(head) > _MAX_RESPONSE_HEAD:  # websockets refuses it: give it all
                self._gave_up, self._head = True, None
                super().data_received(bytes(head))
            return
        self._head = None
        super().data_received(bytes(head[: end + 4]))
        rest = bytes(head[end + 4 :])
        if self.protocol.state is State.OPEN:
            self._cutter = FrameCutter(self.protocol.max_message_size)
            if rest:
                self.data_received(rest)
        else:
            self._gave_up = True
            if rest:
                super().data_received(rest)

    def process_event(self, event: Event) -> None:
        if isinstance(event, Frame):
            opcode = event.opcode
            if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
                self._in_fragments = not event.fin
            elif opcode is Opcode.CONT and event.fin:
                self._in_fragments = False
        super().process_event(event)

    def send_text_now(self, data: bytes) -> bool:
        """Write `data` (UTF-8) as one text frame now, without websockets' `send` and its
        context manager, frame object and drain. False, having written nothing, unless the
        connection is open, no fragmented message is being sent and the transport's buffer
        is below its limit: then call `send`, which waits for them."""
        transport = self.transport
        if (
            self.protocol.state is not State.OPEN
            or self.send_in_progress is not None
            or self.paused
            or transport.is_closing()
        ):
            return False
        mask = os.urandom(4)
        head = frame_head(FIN_TEXT, len(data), masked=True)
        transport.write(head + mask + apply_mask(data, mask))
        return True
