"""The SDK's WebSocket connection (`sync_sdk._transport.Connection`) over a real socket: a
whole text message goes straight to `on_text`, anything else through websockets' queue,
and the two ways together keep the order in which the server sent them."""

from __future__ import annotations

import asyncio

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from sync_sdk._transport import Connection


async def test_messages_keep_their_order_whichever_way_they_take() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.recv()  # the client set on_text
        await ws.send("a")
        await ws.send(["b", "c"])  # one fragmented message: queued
        await ws.send("d")  # behind it in the queue
        await ws.send(b"e")  # binary: queued
        await ws.send("f")
        await ws.recv()  # the client has read all of the above
        await ws.send("g")  # nothing queued any more: straight to on_text
        await ws.wait_closed()

    got: list[tuple[str, str | bytes]] = []
    arrived = asyncio.Condition()

    def record(way: str, message: str | bytes) -> None:
        got.append((way, message))
        asyncio.get_running_loop().create_task(notify())

    async def notify() -> None:
        async with arrived:
            arrived.notify_all()

    async def until(n: int) -> None:
        async with arrived:
            await arrived.wait_for(lambda: len(got) >= n)

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}", create_connection=Connection) as ws:
            assert isinstance(ws, Connection)
            ws.on_text = lambda text: record("direct", text)

            async def read_queue() -> None:
                async for message in ws:
                    record("queued", message)

            reader = asyncio.create_task(read_queue())
            await ws.send("go")
            async with asyncio.timeout(5):
                await until(5)
                await ws.send("read")
                await until(6)
            ws.on_text = None
        await reader
    assert [m for _, m in got] == ["a", "bc", "d", b"e", "f", "g"]
    # "d" and "f" go either way, by whether the queue is empty when they are read.
    ways = dict((m, way) for way, m in got)
    assert (ways["a"], ways["bc"], ways[b"e"], ways["g"]) == (
        "direct",
        "queued",
        "queued",
        "direct",
    )


async def test_without_on_text_every_message_is_queued() -> None:
    async def handler(ws: ServerConnection) -> None:
        for text in ("one", "two"):
            await ws.send(text)
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}", create_connection=Connection) as ws:
            async with asyncio.timeout(5):
                assert [await ws.recv(), await ws.recv()] == ["one", "two"]
