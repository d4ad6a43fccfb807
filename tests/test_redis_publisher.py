"""The Redis broker's own publishing connection (`redis_broker._Publisher`): replies split
across reads, several in one read, and an error reply, against a fake transport."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis

from sync_server.redis_broker import _command, _Publisher


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []

    def write(self, data: Any) -> None:
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return False


def test_command_is_resp() -> None:
    assert (
        _command(b"PUBLISH", b"ch", b"a|b") == b"*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$3\r\na|b\r\n"
    )


async def _calling(replies: int) -> tuple[_Publisher, _Transport, asyncio.Future[None]]:
    """A publisher on a fake transport with a call of `replies` commands sent, unanswered."""
    publisher = _Publisher()
    transport = _Transport()
    publisher.connection_made(transport)
    call = asyncio.ensure_future(publisher.call(b"x", replies))
    await asyncio.sleep(0)
    return publisher, transport, call


async def test_replies_split_and_batched() -> None:
    publisher, transport, call = await _calling(3)
    assert transport.written == [b"x"]
    publisher.data_received(b":1\r\n:")
    await asyncio.sleep(0)
    assert not call.done()
    publisher.data_received(b"0\r")
    publisher.data_received(b"\n:2\r\n")
    await asyncio.wait_for(call, 1)


async def test_error_reply_raises() -> None:
    publisher, _, call = await _calling(2)
    publisher.data_received(b":1\r\n-WRONGPASS invalid password\r\n")
    with pytest.raises(redis.ResponseError, match="WRONGPASS"):
        await asyncio.wait_for(call, 1)


async def test_lost_connection_fails_the_call() -> None:
    publisher, _, call = await _calling(1)
    publisher.connection_lost(None)
    with pytest.raises(ConnectionError):
        await asyncio.wait_for(call, 1)
    assert not publisher.open
