"""The server's own cost of one realtime message, in-process (no network, no client): a `ping`
frame handed to the connection's protocol as the transport would, until its reply is written
back to the transport. Measured for the two ways the server can carry `/v1/realtime`:

- `server_ping`: `sync_server.ws_server.RealtimeWebSocket` (what `sync-server serve` runs: the
  front door called from the transport, frames written straight to it);
- `server_ping_asgi`: uvicorn's `websockets-sansio` protocol, the ASGI hop and Starlette's
  `WebSocket` (the fallback route, and what the server ran before).

Both include the loop turn from the frame's arrival to the door's task, validation and
dispatch of the request (the same front door), and encoding the reply. Blocks of the two
alternate; each figure is the median of per-message times.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import WebSocketRoute
from sync_generated import protocol as p
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.frames import Frame, Opcode

from sync_server.app import AccessLog
from sync_server.realtime import realtime_endpoint
from sync_server.service import SyncService
from sync_server.ws import Door, RealtimeSocket, asgi_door
from sync_server.ws_server import RealtimeWebSocket

from .common import percentile

HANDSHAKE = (
    b"GET /v1/realtime HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n"
)


class FakeTransport(asyncio.Transport):
    """A transport that keeps nothing and tells a waiter when something is written."""

    def __init__(self) -> None:
        super().__init__()
        self.waiter: asyncio.Future[None] | None = None
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 4700)}.get(
            name, default
        )


def client_frame(obj: dict[str, Any]) -> bytes:
    return Frame(Opcode.TEXT, orjson.dumps(obj)).serialize(mask=True, extensions=[])


async def exchange(protocol: asyncio.Protocol, transport: FakeTransport, data: bytes) -> None:
    """Hand `data` to the protocol as its transport would (from a callback of the loop, not
    from a task); return once something is written."""
    loop = asyncio.get_running_loop()
    waiter = loop.create_future()
    transport.waiter = waiter
    loop.call_soon(protocol.data_received, data)
    await waiter


async def connect(
    protocol: asyncio.Protocol, transport: FakeTransport, token: str, client_id: str = "wscost"
) -> None:
    """The WebSocket handshake and `hello`, on a fake transport."""
    protocol.connection_made(transport)
    await exchange(protocol, transport, HANDSHAKE)
    hello = {"id": 1, "type": "hello", "protocol": p.PROTOCOL_VERSION, "token": token}
    await exchange(protocol, transport, client_frame({**hello, "client_id": client_id}))


async def _pings(protocol: asyncio.Protocol, transport: FakeTransport, n: int) -> list[int]:
    frame = client_frame({"id": 7, "type": "ping"})
    samples = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        await exchange(protocol, transport, frame)
        samples.append(time.perf_counter_ns() - t0)
    return samples


def native_door(service: SyncService) -> Door:
    """The `/v1/realtime` front door of `service`."""

    async def door(ws: RealtimeSocket) -> None:
        await realtime_endpoint(ws, service)

    return door


def door_connection(door: Door, port: int = 50000) -> RealtimeWebSocket:
    """A connection of our WebSocket protocol running `door` (not yet connected to a
    transport: see `connect`, or call `connection_made`)."""
    return RealtimeWebSocket(
        door,
        connections=set(),
        tasks=set(),
        default_headers=[],
        max_size=2**20,
        ping_interval=None,
        ping_timeout=None,
        client=("127.0.0.1", port),
        server=("127.0.0.1", 4700),
        secure=False,
    )


def realtime_connection(
    service: SyncService, port: int = 50000
) -> tuple[RealtimeWebSocket, FakeTransport]:
    """A `/v1/realtime` connection of `service` on our protocol, and its fake transport (not
    yet connected: see `connect`)."""
    return door_connection(native_door(service), port), FakeTransport()


async def measure(service: SyncService, token: str, n: int) -> dict[str, float]:
    ours, ours_t = realtime_connection(service)
    app = Starlette(
        routes=[WebSocketRoute("/v1/realtime", asgi_door(native_door(service)))],
        middleware=[Middleware(AccessLog)],
    )
    config = uvicorn.Config(
        app, ws="websockets-sansio", ws_ping_interval=None, lifespan="off", log_config=None
    )
    config.load()
    asgi_t = FakeTransport()
    asgi = WebSocketsSansIOProtocol(config=config, server_state=ServerState(), app_state={})
    await connect(ours, ours_t, token)
    await connect(asgi, asgi_t, token)
    samples: dict[str, list[int]] = {"server_ping": [], "server_ping_asgi": []}
    block = max(n // 10, 1)
    for _ in range(10):
        samples["server_ping"] += await _pings(ours, ours_t, block)
        samples["server_ping_asgi"] += await _pings(asgi, asgi_t, block)
    ours.shutdown()
    asgi.shutdown()
    await asyncio.sleep(0)
    return {
        name: round(percentile([s / 1000 for s in values[block // 5 :]], 50), 1)
        for name, values in samples.items()
    }
