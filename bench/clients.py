"""Lightweight WebSocket clients, the same for every stack: raw `websockets` connections that
speak each stack's own protocol (ours: hello + subscribe; raw and Django Channels: /sub;
socket.io: engine.io v4 open, namespace connect, `join` with ack). Subscribers parse every
frame with orjson. Publishers keep up to `PUBLISH_WINDOW` publishes in flight."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
from typing import Any, Literal

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

Stack = Literal["ours", "raw", "socketio", "channels"]

PUBLISH_WINDOW = 32
"""Publishes a bench publisher keeps in flight (sent, not yet acknowledged), for every stack."""

_CONNECT_KW: dict[str, Any] = {
    "compression": None,
    "max_size": 1 << 22,
    "ping_interval": None,  # the servers ping; the clients only answer
    "open_timeout": 30,
    "close_timeout": 2,
}
_ids = itertools.count(1)


async def _recv_reply(ws: ClientConnection, request_id: int) -> dict[str, Any]:
    """The reply to `request_id` on our protocol (events before it are skipped)."""
    while True:
        msg = orjson.loads(await ws.recv())
        if msg.get("type") == "reply" and msg.get("id") == request_id:
            if msg.get("error"):
                raise RuntimeError(f"request {request_id} failed: {msg['error']}")
            result: dict[str, Any] = msg.get("result") or {}
            return result


async def open_ours(
    base: str, token: str, sids: list[str], client_id: str | None = None
) -> ClientConnection:
    """Our protocol: hello with the token, then subscribe to each sid (pipelined)."""
    ws = await connect(base + "/v1/realtime", **_CONNECT_KW)
    try:
        cid = client_id or f"bench-{next(_ids)}"
        await ws.send(
            orjson.dumps({"id": 1, "type": "hello", "token": token, "client_id": cid}), text=True
        )
        for i, sid in enumerate(sids):
            await ws.send(orjson.dumps({"id": 2 + i, "type": "subscribe", "sid": sid}), text=True)
        async with asyncio.timeout(30):
            pending = set(range(1, 2 + len(sids)))
            while pending:
                msg = orjson.loads(await ws.recv())
                if msg.get("type") == "reply":
                    if msg.get("error"):
                        raise RuntimeError(f"ours: {msg['error']}")
                    pending.discard(msg.get("id"))
    except BaseException:
        await ws.close()
        raise
    return ws


async def ours_request(
    ws: ClientConnection, request_id: int, type_: str, **params: Any
) -> dict[str, Any]:
    await ws.send(orjson.dumps({**params, "id": request_id, "type": type_}), text=True)
    async with asyncio.timeout(30):
        return await _recv_reply(ws, request_id)


async def open_raw(base: str, path: str) -> ClientConnection:
    """A raw websockets connection; /sub and /relay answer `ok` once registered."""
    ws = await connect(base + path, **_CONNECT_KW)
    if path in ("/sub", "/relay"):
        async with asyncio.timeout(30):
            ok = await ws.recv()
        if ok != "ok":
            await ws.close()
            raise RuntimeError(f"raw {path}: unexpected {ok!r}")
    return ws


async def open_socketio(base: str, *, join: bool) -> ClientConnection:
    """engine.io v4 over WebSocket only, connect to namespace `/`, optionally `join` (ack'd)."""
    ws = await connect(base + "/socket.io/?EIO=4&transport=websocket", **_CONNECT_KW)
    try:
        async with asyncio.timeout(30):
            opened = await ws.recv()
            if not isinstance(opened, str) or not opened.startswith("0"):
                raise RuntimeError(f"engine.io: unexpected open packet {opened!r:.80}")
            await ws.send("40")
            await _sio_wait(ws, "40")
            if join:
                await ws.send('420["join"]')
                await _sio_wait(ws, "430")
    except BaseException:
        await ws.close()
        raise
    return ws


async def _sio_wait(ws: ClientConnection, prefix: str) -> str:
    while True:
        msg = await ws.recv()
        assert isinstance(msg, str)
        if msg == "2":
            await ws.send("3")
        elif msg.startswith(prefix):
            return msg


class SocketIOPublisher:
    """Emit `pub` with an ack and wait for it. A reader task answers engine.io pings all the
    time (an idle publisher that ignores them is dropped after ping_interval + ping_timeout)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._ack = 0
        self._waiting: dict[int, asyncio.Future[None]] = {}
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for msg in self.ws:
                if msg == "2":
                    await self.ws.send("3")
                elif isinstance(msg, str) and msg.startswith("43"):
                    ack_id = int(msg[2 : msg.index("[")])
                    fut = self._waiting.pop(ack_id, None)
                    if fut is not None and not fut.done():
                        fut.set_result(None)
        for fut in self._waiting.values():
            if not fut.done():
                fut.set_exception(ConnectionError("socket.io publisher disconnected"))

    async def publish(self, data: Any) -> None:
        self._ack += 1
        fut = asyncio.get_running_loop().create_future()
        self._waiting[self._ack] = fut
        await self.ws.send(f"42{self._ack}".encode() + orjson.dumps(["pub", data]), text=True)
        await asyncio.wait_for(fut, 30)

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


class AckPublisher:
    """Publish on a raw or Django Channels `/pub` connection, which acknowledges each frame
    with `a`, in order: several publishes may be in flight, a reader task resolves them."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._waiting: collections.deque[asyncio.Future[None]] = collections.deque()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for msg in self.ws:
                if msg == "a" and self._waiting:
                    fut = self._waiting.popleft()
                    if not fut.done():
                        fut.set_result(None)
        for fut in self._waiting:
            if not fut.done():
                fut.set_exception(ConnectionError("publisher disconnected"))

    async def publish(self, frame: bytes) -> None:
        fut = asyncio.get_running_loop().create_future()
        self._waiting.append(fut)
        await self.ws.send(frame, text=True)
        await asyncio.wait_for(fut, 30)

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


async def open_subscriber(stack: Stack, base: str, token: str, sids: list[str]) -> ClientConnection:
    if stack == "ours":
        return await open_ours(base, token, sids)
    if stack in ("raw", "channels"):
        return await open_raw(base, "/sub")
    return await open_socketio(base, join=True)
