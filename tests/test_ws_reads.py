"""How our WebSocket protocol (`sync_server.ws_server`) reads the client's bytes: final,
masked text and binary frames are cut out and unmasked by the protocol itself, every other
frame goes whole to websockets' parser. Whatever way the bytes are cut into reads, the door
gets the same messages in the same order, pings are answered, and a frame the protocol
forbids closes the connection with the code websockets gives it. A recording transport
stands in for the socket; the suite's end-to-end tests run the same code over real sockets."""

from __future__ import annotations

import asyncio
import random

import pytest
from websockets.frames import Close, CloseCode, Frame, Opcode

from bench.wscost import HANDSHAKE, door_connection
from sync_server.ws import Disconnected, RealtimeSocket
from sync_server.ws_server import RealtimeWebSocket
from tests.test_ws_writes import RecordingTransport, frames_in


def masked(opcode: Opcode, data: bytes, *, fin: bool = True) -> bytes:
    return Frame(opcode, data, fin=fin).serialize(mask=True, extensions=[])


MESSAGES: list[str | bytes] = [
    "small",
    b"\x00binary\xff",
    "é" * 200,  # 400 bytes: a 16-bit length
    "x" * 70_000,  # a 64-bit length
    "fragmented message",
    "after the fragments",
]
FRAMES = [
    masked(Opcode.TEXT, b"small"),
    masked(Opcode.BINARY, b"\x00binary\xff"),
    masked(Opcode.PING, b"are you there"),
    masked(Opcode.TEXT, ("é" * 200).encode()),
    masked(Opcode.TEXT, b"x" * 70_000),
    masked(Opcode.TEXT, b"fragmented ", fin=False),
    masked(Opcode.PING, b"in between"),
    masked(Opcode.CONT, b"message"),
    masked(Opcode.TEXT, b"after the fragments"),
]
STREAM = b"".join(FRAMES)


async def open_connection() -> tuple[RealtimeWebSocket, RecordingTransport, list[str | bytes]]:
    received: list[str | bytes] = []

    async def door(ws: RealtimeSocket) -> None:
        try:
            while True:
                received.append(await ws.receive())
        except Disconnected:
            pass

    protocol = door_connection(door)
    transport = RecordingTransport()
    protocol.connection_made(transport)
    protocol.data_received(HANDSHAKE)
    await asyncio.sleep(0)
    assert transport.writes[0].startswith(b"HTTP/1.1 101")
    transport.writes.clear()
    return protocol, transport, received


def cuts(data: bytes, sizes: list[int]) -> list[bytes]:
    chunks, pos = [], 0
    for size in sizes:
        chunks.append(data[pos : pos + size])
        pos += size
    return [c for c in chunks if c] + [data[pos:]]


def around_frame_ends(shift: int) -> list[bytes]:
    """The stream cut `shift` bytes after (or before) the end of every frame."""
    ends, pos = [], 0
    for frame in FRAMES:
        pos += len(frame)
        ends.append(pos + shift)
    starts = [0, *ends[:-1]]
    return [STREAM[a:b] for a, b in zip(starts, ends, strict=True)] + [STREAM[ends[-1] :]]


@pytest.mark.parametrize(
    "way",
    ["one read", "byte by byte", "random cuts", "frame heads cut", "last bytes late", "one over"],
)
async def test_the_same_messages_however_the_bytes_are_cut(way: str) -> None:
    protocol, transport, received = await open_connection()
    if way == "one read":
        chunks = [STREAM]
    elif way == "byte by byte":
        chunks = [STREAM[i : i + 1] for i in range(len(STREAM))]
    elif way == "random cuts":
        rng = random.Random(7)
        chunks = cuts(STREAM, [rng.randint(1, 3000) for _ in range(200)])
    elif way == "frame heads cut":  # cuts right after 1, 3 or 9 bytes of a frame
        chunks = cuts(STREAM, [1, 3, 9, 1, 6, 3, 9, 4, 1] * 4)
    elif way == "last bytes late":  # each frame's last byte comes with the next read
        chunks = around_frame_ends(-1)
    else:  # each read ends one byte into the next frame
        chunks = around_frame_ends(1)
    for chunk in chunks:
        protocol.data_received(chunk)
        await asyncio.sleep(0)
    await asyncio.sleep(0.01)
    assert received == MESSAGES
    pongs = [f for w in transport.writes for f in frames_in(w)]
    assert [(f.opcode, bytes(f.data)) for f in pongs] == [
        (Opcode.PONG, b"are you there"),
        (Opcode.PONG, b"in between"),
    ]
    assert not transport.is_closing()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (Frame(Opcode.TEXT, b"unmasked").serialize(mask=False, extensions=[]), 1002),
        (masked(Opcode.CONT, b"a continuation of nothing"), 1002),
        (masked(Opcode.TEXT, b"x" * (2**20 + 1)), 1009),  # over the connection's max_size
        (masked(Opcode.TEXT, b"\xff\xfe not UTF-8"), 1007),
        (bytes([0x81 | 0x40, 0x80 | 3]) + b"\x00\x00\x00\x00abc", 1002),  # a reserved bit
    ],
    ids=["unmasked", "stray continuation", "too big", "invalid UTF-8", "reserved bit"],
)
async def test_a_forbidden_frame_closes_with_its_code(frame: bytes, code: int) -> None:
    protocol, transport, received = await open_connection()
    protocol.data_received(masked(Opcode.TEXT, b"before") + frame[:20])
    protocol.data_received(frame[20:] + masked(Opcode.TEXT, b"never read"))
    await asyncio.sleep(0.01)
    assert received == ["before"]
    closes = [f for w in transport.writes for f in frames_in(w) if f.opcode is Opcode.CLOSE]
    assert [Close.parse(bytes(f.data)).code for f in closes] == [CloseCode(code)]
    assert transport.is_closing()
