"""uvicorn's HTTP protocol, guarded against clients that hold sockets without finishing a
request: each request's head (request line and headers, WebSocket handshakes included)
must arrive within `head_timeout` seconds of the connection or of the previous response
and be at most `MAX_HEAD_BYTES`, and its body within `head_timeout` more; otherwise the
socket is closed (431 for a head too large).
An idle keep-alive connection is closed by uvicorn itself (`timeout_keep_alive`). Past
`max_connections` open connections (HTTP and WebSocket) a new one is refused at once with
a 503, before it can hold a file descriptor for long.

A WebSocket upgrade for one of the realtime paths (`doors`) is handed to
`ws_server.RealtimeWebSocket`, which serves it without ASGI; any other goes to uvicorn's
WebSocket protocol and the ASGI app, as before.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from types import MappingProxyType
from urllib.parse import unquote

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.utils import get_local_addr, is_ssl

from .ws import Door
from .ws_server import RealtimeWebSocket

log = logging.getLogger("sync_server.http")

MAX_HEAD_BYTES = 64 * 1024


def _plain(status: bytes, text: bytes) -> bytes:
    """A complete HTTP/1.1 response with a short text body, closing the connection."""
    head = b"HTTP/1.1 %s\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n"
    return head % (status, len(text)) + b"connection: close\r\n\r\n" + text


_UNAVAILABLE = _plain(b"503 Service Unavailable", b"too many connections; retry later")
_TOO_LARGE = _plain(b"431 Request Header Fields Too Large", b"request header fields too large")


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol with a deadline and a size limit on every request head."""

    max_connections = 10_000
    head_timeout = 10.0
    doors: Mapping[str, Door] = MappingProxyType({})  # realtime paths served off ASGI
    _head_timer: asyncio.TimerHandle | None = None
    _head_bytes = 0
    _in_head = True
    _body_done = True

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            log.warning("refusing %s: %d connections open", self.client, len(self.connections))
            transport.write(_UNAVAILABLE)
            transport.close()
            return
        self._expect_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        in_head = self._in_head
        super().data_received(data)  # at most one read of the transport (256 KiB) per call
        if in_head and self._in_head:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES and not self.transport.is_closing():
                log.warning("closing %s: request head over %d bytes", self.client, MAX_HEAD_BYTES)
                self.transport.write(_TOO_LARGE)
                self.transport.close()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._body_done = False
        self._stop_head_timer()
        super().on_headers_complete()
        if not (self.parser.should_upgrade() and self._should_upgrade()):  # a WebSocket: none
            self._head_timer = self.loop.call_later(self.head_timeout, self._body_too_slow)

    def handle_websocket_upgrade(self) -> None:
        path = self.url.partition(b"?")[0].decode("latin-1")
        door = self.doors.get(unquote(path) if "%" in path else path)
        if door is None:
            super().handle_websocket_upgrade()
            return
        self.connections.discard(self)
        config = self.config
        protocol = RealtimeWebSocket(
            door,
            connections=self.connections,
            tasks=self.tasks,
            default_headers=self.server_state.default_headers,
            max_size=config.ws_max_size,
            ping_interval=config.ws_ping_interval,
            ping_timeout=config.ws_ping_timeout,
            client=self.client,
            server=get_local_addr(self.transport),
            secure=is_ssl(self.transport),
        )
        head = [self.scope["method"].encode(), b" ", self.url, b" HTTP/1.1\r\n"]
        for name, value in self.scope["headers"]:
            head += [name, b": ", value, b"\r\n"]
        head.append(b"\r\n")
        protocol.connection_made(self.transport)
        protocol.data_received(b"".join(head))
        self.transport.set_protocol(protocol)

    def on_message_complete(self) -> None:
        self._body_done = True
        self._stop_head_timer()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # A response sent before the whole body arrived (a 413, say): what follows is still
        # that body (its timer runs), not the next request's head.
        if self._body_done and not self.transport.is_closing():
            self._expect_head()

    def _expect_head(self) -> None:
        self._in_head = True
        self._head_bytes = 0
        self._stop_head_timer()
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_too_slow)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _body_too_slow(self) -> None:
        self._head_timer = None
        if not self._body_done and not self.transport.is_closing():
            log.info("closing %s: no request body in %.0f s", self.client, self.head_timeout)
            self.transport.close()

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self._in_head and not self.transport.is_closing():
            log.info("closing %s: no request head in %.0f s", self.client, self.head_timeout)
            self.transport.close()


def guarded_http(
    max_connections: int, head_timeout: float, doors: Mapping[str, Door] | None = None
) -> type[GuardedHttpToolsProtocol]:
    """The guarded protocol class, for uvicorn.Config(http=...); `doors`: the realtime paths
    it serves without ASGI."""
    settings = {
        "max_connections": max_connections,
        "head_timeout": head_timeout,
        "doors": MappingProxyType(dict(doors or {})),
    }
    return type("GuardedHttp", (GuardedHttpToolsProtocol,), settings)
