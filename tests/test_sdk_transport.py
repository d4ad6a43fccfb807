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
        url = f"ws://127.0.0.1:{port}"
        async with connect(url, create_connection=Connection, compression=None) as ws:
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
        url = f"ws://127.0.0.1:{port}"
        async with connect(url, create_connection=Connection, compression=None) as ws:
            async with asyncio.timeout(5):
                assert [await ws.recv(), await ws.recv()] == ["one", "two"]


async def test_compressed_frames_take_websockets_way() -> None:
    """With permessage-deflate (which the SDK does not offer), every frame carries RSV1:
    none is read by the cutter, all arrive through the queue, inflated, in order."""

    async def handler(ws: ServerConnection) -> None:
        await ws.recv()
        for text in ("one", "two", "three" * 100):
            await ws.send(text)
        await ws.wait_closed()

    direct: list[str] = []
    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}", create_connection=Connection) as ws:
            assert isinstance(ws, Connection)
            ws.on_text = direct.append
            await ws.send("go")
            async with asyncio.timeout(5):
                got = [await ws.recv() for _ in range(3)]
    assert got == ["one", "two", "three" * 100] and direct == []


async def test_send_text_now_writes_frames_the_server_reads() -> None:
    received: list[str | bytes] = []
    done = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        async for message in ws:  # websockets' server refuses an unmasked client frame
            received.append(message)
            if len(received) == 3:
                done.set()

    texts = ["small", "é" * 1000, "x" * 70_000]  # 7-bit, 16-bit and 64-bit lengths
    async with serve(handler, "127.0.0.1", 0, max_size=None) as server:
        port = server.sockets[0].getsockname()[1]
        url = f"ws://127.0.0.1:{port}"
        async with connect(url, create_connection=Connection, compression=None) as ws:
            assert isinstance(ws, Connection)
            assert [ws.send_text_now(t.encode()) for t in texts] == [True, True, True]
            async with asyncio.timeout(5):
                await done.wait()
        assert not ws.send_text_now(b"after the close")  # websockets' send raises then
    assert received == texts


async def test_frames_in_the_same_read_as_the_handshake_response() -> None:
    """A server that writes its 101 response, one whole frame and the start of another in
    one go: websockets reads the response to its last byte, the frames after it are cut
    from there (the first one before `on_text` is set, so it is queued)."""
    from websockets.frames import Frame, Opcode
    from websockets.utils import accept_key

    def unmasked(text: str) -> bytes:
        return Frame(Opcode.TEXT, text.encode()).serialize(mask=False, extensions=[])

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        key = next(
            line.split(b":", 1)[1].strip().decode()
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        response = (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept_key(key)}\r\n\r\n"
        ).encode()
        second = unmasked("second" * 50)
        writer.write(response + unmasked("first") + second[:7])
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(second[7:] + unmasked("third"))
        await writer.drain()
        await reader.read()  # until the client closes
        writer.close()

    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    direct: list[str] = []
    async with server:
        url = f"ws://127.0.0.1:{port}"
        ws = await connect(url, create_connection=Connection, compression=None)
        assert isinstance(ws, Connection)
        try:
            async with asyncio.timeout(5):
                assert await ws.recv() == "first"
                both = asyncio.Event()

                def on_text(text: str) -> None:
                    direct.append(text)
                    if len(direct) == 2:
                        both.set()

                ws.on_text = on_text
                await both.wait()
        finally:
            ws.transport.abort()
    assert direct == ["second" * 50, "third"]
