"""Baseline servers, each run as its own process (so RSS and CPU are read from /proc alike):

    python -m bench.baselines raw --port 0       # websockets: /echo, /relay, /sub + /pub
    python -m bench.baselines socketio --port 0  # python-socketio AsyncServer on uvicorn

Both print `listening on http://127.0.0.1:PORT` once they accept connections.

raw (websockets, no compression, uvloop):
  /echo   sends every frame back.
  /relay  forwards every frame to the other /relay connections.
  /sub    a subscriber: answers `ok` once registered, then only receives.
  /pub    every frame is broadcast as is to all /sub connections (`websockets.broadcast`,
          the same bytes written to every transport), then acknowledged with `a`.

socketio (python-socketio + engine.io over uvicorn `websockets-sansio`, like our server):
  event `join` (with ack) enters room `bench`; event `pub` (with ack) emits `msg` with the
  same data to room `bench`, then acknowledges.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
from typing import Any

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
    import uvicorn

    sio = socketio.AsyncServer(async_mode="asgi", logger=False, engineio_logger=False)

    async def join(sid: str, *args: Any) -> str:
        await sio.enter_room(sid, "bench")
        return "ok"

    async def pub(sid: str, data: Any) -> str:
        await sio.emit("msg", data, room="bench")
        return "ok"

    sio.on("join", join)
    sio.on("pub", pub)

    app = socketio.ASGIApp(sio)
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
    print(
        f"python-socketio listening on http://{HOST}:{sock.getsockname()[1]}",
        flush=True,
    )
    server.run(sockets=[sock])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.baselines")
    parser.add_argument("kind", choices=["raw", "socketio"])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    raise_nofile()
    if args.kind == "raw":
        run_async(_serve_raw(args.port))
    else:
        _serve_socketio(args.port)


if __name__ == "__main__":
    main()
