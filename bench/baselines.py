"""Baseline servers, each run as its own process (so RSS and CPU are read from /proc alike):

    python -m bench.baselines raw --port 0       # websockets: /echo, /relay, /sub + /pub
    python -m bench.baselines socketio --port 0  # python-socketio AsyncServer on uvicorn
    python -m bench.baselines channels --port 0  # Django Channels on uvicorn
    python -m bench.baselines channels --port 0 --redis-url redis://... --prefix P

Each prints `listening on http://127.0.0.1:PORT` once it accepts connections.

raw (websockets, no compression, uvloop):
  /echo   sends every frame back.
  /relay  forwards every frame to the other /relay connections.
  /sub    a subscriber: answers `ok` once registered, then only receives.
  /pub    every frame is broadcast as is to all /sub connections (`websockets.broadcast`,
          the same bytes written to every transport), then acknowledged with `a`.

socketio (python-socketio + engine.io over uvicorn `websockets-sansio`, like our server):
  event `join` (with ack) enters room `bench`; event `pub` (with ack) emits `msg` with the
  same data to room `bench`, then acknowledges.

channels (Django Channels 4 + the same uvicorn transport; settings configured in code; the
in-memory channel layer, or channels_redis's RedisChannelLayer with --redis-url, so that
several processes share the groups):
  /sub  an `AsyncWebsocketConsumer` in group `bench` (joined before `connect`), answers `ok`;
        a group message is sent on as the text frame it carries.
  /pub  every text frame is `group_send` to `bench` as it came (no re-encoding), then
        acknowledged with `a`.
  Both layers get a capacity of 10,000 messages per channel (the library default of 100
  drops group messages silently under a burst).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
from typing import Any, ClassVar

from .common import HOST, raise_nofile, run_async


async def _serve_raw(port: int) -> None:
    import websockets
    from websockets.asyncio.server import ServerConnection, serve

    subs: set[ServerConnection] = set()
    relay: set[ServerConnection] = set()

    async def handler(ws: ServerConnection) -> None:
        path = ws.request.path if ws.request is not None else ""
        if path == "/echo":
            async for msg in ws:
                await ws.send(msg)
        elif path == "/relay":
            relay.add(ws)
            try:
                await ws.send("ok")
                async for msg in ws:
                    websockets.broadcast([c for c in relay if c is not ws], msg)
            finally:
                relay.discard(ws)
        elif path == "/sub":
            subs.add(ws)
            try:
                await ws.send("ok")
                await ws.wait_closed()
            finally:
                subs.discard(ws)
        elif path == "/pub":
            async for msg in ws:
                websockets.broadcast(subs, msg)
                await ws.send("a")
        else:
            await ws.close(4404)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    async with serve(
        handler, HOST, port, compression=None, max_size=1 << 20, backlog=4096
    ) as server:
        bound = next(iter(server.sockets)).getsockname()[1]
        print(f"raw websockets listening on http://{HOST}:{bound}", flush=True)
        await stop.wait()


def _serve_socketio(port: int) -> None:
    import socketio  # type: ignore[import-untyped]

    sio = socketio.AsyncServer(async_mode="asgi", logger=False, engineio_logger=False)

    async def join(sid: str, *args: Any) -> str:
        await sio.enter_room(sid, "bench")
        return "ok"

    async def pub(sid: str, data: Any) -> str:
        await sio.emit("msg", data, room="bench")
        return "ok"

    sio.on("join", join)
    sio.on("pub", pub)

    _serve_uvicorn(socketio.ASGIApp(sio), port, "python-socketio")


def _channels_app(redis_url: str | None, prefix: str) -> Any:
    """A minimal Django Channels ASGI application (see the module docstring)."""
    import django  # type: ignore[import-untyped]
    from django.conf import settings  # type: ignore[import-untyped]

    layer: dict[str, Any]
    if redis_url:
        layer = {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py's pool holds 100 connections by default: a burst of consumers
                # joining the group at once needs more.
                "hosts": [{"address": redis_url, "max_connections": 1000, "socket_timeout": 30}],
                "prefix": prefix,
                "capacity": CHANNELS_CAPACITY,
            },
        }
    else:
        layer = {
            "BACKEND": "channels.layers.InMemoryChannelLayer",
            "CONFIG": {"capacity": CHANNELS_CAPACITY},
        }
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench",
        ALLOWED_HOSTS=["*"],
        INSTALLED_APPS=["channels"],
        CHANNEL_LAYERS={"default": layer},
        LOGGING_CONFIG=None,
        USE_TZ=True,
    )
    django.setup()

    from channels.generic.websocket import (  # type: ignore[import-untyped]
        AsyncWebsocketConsumer,
    )
    from channels.routing import ProtocolTypeRouter, URLRouter  # type: ignore[import-untyped]
    from django.urls import path  # type: ignore[import-untyped]

    class Subscriber(AsyncWebsocketConsumer):  # type: ignore[misc]
        groups: ClassVar[list[str]] = ["bench"]  # joined before connect()

        async def connect(self) -> None:
            await self.accept()
            await self.send(text_data="ok")

        async def bench_message(self, event: dict[str, Any]) -> None:
            await self.send(text_data=event["text"])

    class Publisher(AsyncWebsocketConsumer):  # type: ignore[misc]
        async def receive(self, text_data: str | None = None, bytes_data: Any = None) -> None:
            await self.channel_layer.group_send(
                "bench", {"type": "bench.message", "text": text_data}
            )
            await self.send(text_data="a")

    return ProtocolTypeRouter(
        {
            "websocket": URLRouter(
                [path("sub", Subscriber.as_asgi()), path("pub", Publisher.as_asgi())]
            )
        }
    )


CHANNELS_CAPACITY = 10_000


def _serve_uvicorn(app: Any, port: int, label: str) -> None:
    """`app` on uvicorn with the transport our server uses (websockets-sansio, uvloop)."""
    import uvicorn

    sock = socket.socket(socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, port))
    sock.listen(4096)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            ws="websockets-sansio",
            loop="uvloop",
            http="httptools",
            ws_per_message_deflate=False,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
    )
    print(f"{label} listening on http://{HOST}:{sock.getsockname()[1]}", flush=True)
    server.run(sockets=[sock])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.baselines")
    parser.add_argument("kind", choices=["raw", "socketio", "channels"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--redis-url", help="channels: use the Redis channel layer")
    parser.add_argument("--prefix", default="bench", help="channels: Redis key prefix")
    args = parser.parse_args()
    raise_nofile()
    if args.kind == "raw":
        run_async(_serve_raw(args.port))
    elif args.kind == "socketio":
        _serve_socketio(args.port)
    else:
        _serve_uvicorn(_channels_app(args.redis_url, args.prefix), args.port, "Django Channels")


if __name__ == "__main__":
    main()
