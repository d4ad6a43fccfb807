"""How our WebSocket protocol (`sync_server.ws_server`) hands frames to its transport: the
frames sent in one turn of the event loop leave in one write, in order, before a close frame,
and a long run of them reaches the transport (whose buffer pauses writers) without waiting
for the turn to end. A recording transport stands in for the socket; the end-to-end
behaviour over real sockets is what the rest of the suite runs on."""

from __future__ import annotations

import asyncio

from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from bench.wscost import HANDSHAKE, FakeTransport, door_connection
from sync_server.ws import RealtimeSocket


class RecordingTransport(FakeTransport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))


def frames_in(data: bytes) -> list[Frame]:
    """The server's frames in `data` (unmasked, as a client reads them)."""
    reader = StreamReader()
    reader.feed_data(data)
    out = []
    while True:
        parser = Frame.parse(reader.read_exact, mask=False)
        try:
            next(parser)
        except StopIteration as done:
            out.append(done.value)
            continue
        return out


async def test_frames_of_one_turn_leave_in_one_write_in_order() -> None:
    steps: asyncio.Queue[list[str]] = asyncio.Queue()
    finished = asyncio.Event()

    async def door(ws: RealtimeSocket) -> None:
        while (texts := await steps.get()) != ["close"]:
            for text in texts:
                await ws.send_text(text)
        await ws.send_text("last words")
        await ws.close(1000)
        finished.set()

    protocol = door_connection(door)
    transport = RecordingTransport()
    protocol.connection_made(transport)
    protocol.data_received(HANDSHAKE)
    await asyncio.sleep(0.01)
    assert transport.writes and transport.writes[0].startswith(b"HTTP/1.1 101")
    transport.writes.clear()

    await steps.put(["event", "reply"])  # one turn: one write, in order
    await asyncio.sleep(0.01)
    assert len(transport.writes) == 1
    assert [f.data for f in frames_in(transport.writes[0])] == [b"event", b"reply"]

    await steps.put(["alone"])  # a later turn: a write of its own
    await asyncio.sleep(0.01)
    assert len(transport.writes) == 2
    assert [f.data for f in frames_in(transport.writes[1])] == [b"alone"]

    # A long run reaches the transport before the turn ends, in writes of at most 64 frames.
    burst = [f"m{n}" for n in range(150)]
    await steps.put(burst)
    await asyncio.sleep(0.01)
    written = transport.writes[2:]
    assert [len(frames_in(w)) for w in written] == [64, 64, 22]
    assert [bytes(f.data).decode() for w in written for f in frames_in(w)] == burst
    del transport.writes[:]

    await steps.put(["close"])  # a frame queued in the closing turn goes before the close
    await asyncio.wait_for(finished.wait(), 1)
    await asyncio.sleep(0.01)
    sent = [f for w in transport.writes for f in frames_in(w)]
    assert [(f.opcode, f.data) for f in sent][:1] == [(Opcode.TEXT, b"last words")]
    assert sent[-1].opcode is Opcode.CLOSE
    protocol.connection_lost(None)


def client_text(text: str) -> bytes:
    return Frame(Opcode.TEXT, text.encode()).serialize(mask=True, extensions=[])


async def test_a_door_waiting_for_a_message_may_answer_it_in_the_read_that_brought_it() -> None:
    """`on_message`: while the door waits in `receive`, the first message of each read is
    offered to it; taken, its answer is flushed before the read returns; refused, or
    any later message of the same read, reaches `receive` as before, in order."""
    received: list[str | bytes] = []
    waiting = asyncio.Event()

    async def door(ws: RealtimeSocket) -> None:
        def take(message: str | bytes) -> bool:
            if message == "leave it":
                return False
            ws.send_text_nowait(f"took {message!s}")
            return True  # the socket flushes what it sent

        ws.on_message = take
        while True:
            waiting.set()
            received.append(await ws.receive())

    protocol = door_connection(door)
    transport = RecordingTransport()
    protocol.connection_made(transport)
    protocol.data_received(HANDSHAKE)
    await asyncio.wait_for(waiting.wait(), 1)
    transport.writes.clear()

    protocol.data_received(client_text("a") + client_text("b"))
    assert [f.data for f in frames_in(b"".join(transport.writes))] == [b"took a"]  # no turn yet
    await asyncio.sleep(0.01)
    assert received == ["b"]  # the read's second message: to `receive`

    protocol.data_received(client_text("leave it"))
    await asyncio.sleep(0.01)
    assert received == ["b", "leave it"]
    assert len(transport.writes) == 1
