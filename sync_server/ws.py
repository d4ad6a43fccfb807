"""What a realtime front door (realtime.py, twilsock.py) needs of a WebSocket, and nothing more:
receive a message, send text or bytes, close with a code. Two transports implement it:

- `ws_server.RealtimeWebSocket`: our own protocol on uvicorn's transport (the HTTP protocol hands
  it the upgrade for a realtime path), which calls no ASGI app per message;
- `AsgiSocket`: a Starlette `WebSocket`, for the ASGI route (uvicorn's h11 server, where
  httptools is missing, and any ASGI host).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from starlette.websockets import WebSocket, WebSocketDisconnect


class Disconnected(Exception):
    """The client went away, or the socket was closed: nothing more can be received or sent."""

    def __init__(self, code: int = 1006) -> None:
        super().__init__(code)
        self.code = code


class RealtimeSocket(Protocol):
    """An accepted WebSocket, as a front door uses it."""

    on_message: Callable[[str | bytes], bool] | None
    """Set by a door that can take a message in the call that read it off the socket: while
    the door waits in `receive` with nothing buffered, the first message of each read is
    offered to it; True: it took it (`receive` goes on waiting; what it sent meanwhile is
    flushed), False: `receive` returns it. A transport without such a call (`AsgiSocket`)
    never offers one."""

    @property
    def secure(self) -> bool:
        """Whether the client connected over TLS (wss)."""
        ...

    @property
    def host(self) -> str:
        """The host (and port) the client addressed, from its Host header."""
        ...

    async def receive(self) -> str | bytes:
        """The next message: str for a text frame, bytes for a binary one. Raises
        `Disconnected` once the client has gone or the socket was closed."""
        ...

    async def send_text(self, data: str) -> None:
        """Write a text frame (waiting while the transport is paused). Raises `Disconnected`."""
        ...

    async def send_bytes(self, data: bytes) -> None:
        """Write a binary frame (waiting while the transport is paused). Raises `Disconnected`."""
        ...

    def send_text_nowait(self, data: str) -> bool:
        """Write a text frame without waiting, if the transport takes it now: False (nothing
        written) while it is paused, or from a socket that only writes by awaiting (the
        caller then uses `send_text`). Raises `Disconnected`."""
        ...

    def send_bytes_nowait(self, data: bytes) -> bool:
        """`send_text_nowait` for a binary frame."""
        ...

    def flush(self) -> None:
        """Write the frames sent so far now rather than at the end of this turn of the loop
        (a front door calls it once a request it started has been answered)."""
        ...

    async def close(self, code: int) -> None:
        """Send a close frame with `code`; the socket closes when the client answers."""
        ...


Door = Callable[[RealtimeSocket], Awaitable[None]]
"""A realtime front door: it runs one accepted connection to its end."""


class AsgiSocket:
    """`RealtimeSocket` over an accepted Starlette WebSocket."""

    __slots__ = ("_ws", "on_message")

    def __init__(self, ws: WebSocket) -> None:
        self._ws = ws
        self.on_message: Callable[[str | bytes], bool] | None = None  # never called here

    @property
    def secure(self) -> bool:
        return self._ws.url.scheme == "wss"

    @property
    def host(self) -> str:
        return self._ws.url.netloc

    async def receive(self) -> str | bytes:
        try:
            message = await self._ws.receive()
        except RuntimeError:  # receiving after a disconnect, or after our close
            raise Disconnected() from None
        if message["type"] == "websocket.disconnect":
            raise Disconnected(message.get("code", 1000))
        text: str | None = message.get("text")
        if text is not None:
            return text
        data: bytes | None = message.get("bytes")
        return data if data is not None else b""

    async def send_text(self, data: str) -> None:
        try:
            await self._ws.send_text(data)
        except (RuntimeError, WebSocketDisconnect):
            raise Disconnected() from None

    async def send_bytes(self, data: bytes) -> None:
        try:
            await self._ws.send_bytes(data)
        except (RuntimeError, WebSocketDisconnect):
            raise Disconnected() from None

    def send_text_nowait(self, data: str) -> bool:
        return False  # Starlette's send is a coroutine

    def send_bytes_nowait(self, data: bytes) -> bool:
        return False

    def flush(self) -> None:
        pass  # Starlette's send has written each frame

    async def close(self, code: int) -> None:
        try:
            await self._ws.close(code)
        except (RuntimeError, WebSocketDisconnect):
            raise Disconnected() from None


def asgi_door(door: Door) -> Callable[[WebSocket], Awaitable[None]]:
    """A Starlette WebSocket endpoint running `door`."""

    async def endpoint(ws: WebSocket) -> None:
        await ws.accept()
        await door(AsgiSocket(ws))

    return endpoint
