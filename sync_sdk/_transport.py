"""The client's WebSocket connection: websockets' own, with messages delivered as parsed.

websockets queues every message it parses for a reader task to take with `recv()`: one
turn of the event loop and a queue per message before the client sees it. `Connection`
hands a whole text message straight to `on_text` instead, in the call that read it off
the socket, while nothing waits in that queue; anything else (a binary or fragmented
message, or any message while the queue is not empty) takes websockets' way, so messages
still reach the client in the order they came. websockets keeps everything else: the
handshake, TLS, pings, the close handshake, size limits and flow control.
"""

from __future__ import annotations

from collections.abc import Callable

from websockets.asyncio.client import ClientConnection
from websockets.frames import Frame, Opcode
from websockets.protocol import Event

__all__ = ["Connection"]


class Connection(ClientConnection):
    """A `ClientConnection` that can deliver text messages to `on_text` as they are parsed."""

    on_text: Callable[[str], None] | None = None
    """Set it to take text messages from here on; None: every message goes to `recv()`."""
    _in_fragments = False  # a fragmented message is arriving: its frames go to the queue

    def process_event(self, event: Event) -> None:
        if self.response is None or not isinstance(event, Frame):
            super().process_event(event)  # the handshake's response
            return
        opcode = event.opcode
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            if not event.fin:
                self._in_fragments = True
            elif (
                opcode is Opcode.TEXT
                and self.on_text is not None
                and not self._in_fragments
                and not len(self.recv_messages.frames)
            ):
                try:
                    text = bytes(event.data).decode()
                except UnicodeDecodeError:
                    pass  # not UTF-8: left to websockets' way, as every message was before
                else:
                    self.on_text(text)
                    return
        elif opcode is Opcode.CONT and event.fin:
            self._in_fragments = False
        super().process_event(event)
