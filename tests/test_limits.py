"""Per-connection and per-object protection, against a real server with tight limits."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import connect

from sync_sdk import DataTooLargeError, RateLimitExceededError, TooManySubscriptionsError
from tests.conftest import ServerFactory, ServerProcess


@pytest.fixture
def tight_server(make_server: ServerFactory) -> ServerProcess:
    return make_server(["--max-subscriptions", "3", "--write-rate", "5", "--write-burst", "5"])


async def test_max_subscriptions_per_connection(tight_server: ServerProcess) -> None:
    async with tight_server.client("alice") as alice:
        for i in range(3):
            await alice.document(f"sub-{i}")
        with pytest.raises(TooManySubscriptionsError) as info:
            await alice.document("sub-3")
        assert (info.value.code, info.value.status) == (51002, 429)
        first = await alice.document("sub-0")  # same object: no new subscription needed
        assert first.sid


async def test_write_rate_limit_per_object(tight_server: ServerProcess) -> None:
    async with connect(f"ws://127.0.0.1:{tight_server.port}/v1/realtime", compression=None) as ws:

        async def call(request_id: int, **frame: Any) -> dict[str, Any]:
            await ws.send(orjson.dumps({"id": request_id, **frame}).decode())
            while True:
                reply = orjson.loads(await ws.recv())
                if reply.get("id") == request_id:
                    return dict(reply)

        await call(1, type="hello", token=tight_server.token("raw"), client_id="raw")
        doc = (await call(2, type="open", kind="document", object_id=f"hot-{uuid.uuid4().hex}"))[
            "result"
        ]
        other = (await call(3, type="open", kind="document", object_id=f"cold-{uuid.uuid4().hex}"))[
            "result"
        ]
        codes = []
        for i in range(8):
            reply = await call(10 + i, type="document_set", sid=doc["sid"], data={"i": i})
            codes.append(reply["error"]["code"] if reply.get("error") else 0)
        assert codes[:5] == [0] * 5  # the burst
        assert 54009 in codes[5:]
        throttled = await call(30, type="document_set", sid=doc["sid"], data={"i": "x"})
        cold = await call(31, type="document_set", sid=other["sid"], data={"ok": True})
        assert cold.get("error") is None  # the limit is per object
        assert throttled.get("error") is None or throttled["error"]["status"] == 429


async def test_sdk_retries_throttled_writes_within_the_command_timeout(
    tight_server: ServerProcess,
) -> None:
    async with tight_server.client("alice", command_timeout=5.0) as alice:
        doc = await alice.document(f"retry-{uuid.uuid4().hex}")
        for i in range(12):  # 5 burst + 7 at 5/s: about 1.4 s of throttling, all applied
            await doc.set({"i": i})
        assert doc.data == {"i": 11} and doc.revision == "12"
    async with tight_server.client("bob", command_timeout=0.3) as bob:
        doc = await bob.document(f"retry-{uuid.uuid4().hex}")
        with pytest.raises(RateLimitExceededError) as info:
            for i in range(20):
                await doc.set({"i": i})
        assert (info.value.code, info.value.status) == (54009, 429)


async def test_merge_that_grows_past_the_limit_is_refused_and_changes_nothing(
    server: ServerProcess,
) -> None:
    async with server.client("alice") as alice:
        doc = await alice.document(f"merge-{uuid.uuid4().hex}", data={"a": "x" * 10_000})
        with pytest.raises(DataTooLargeError) as info:
            await doc.update({"b": "y" * 10_000})  # each part fits, the merge does not
        assert (info.value.code, info.value.status) == (54006, 413)
        fresh = await alice.document(doc.sid, mode="open_existing")
        assert fresh.data == {"a": "x" * 10_000} and fresh.revision == "0"
        m = await alice.map(f"merge-{uuid.uuid4().hex}")
        await m.set("k", {"a": "x" * 10_000})
        with pytest.raises(DataTooLargeError):
            await m.update("k", {"b": "y" * 10_000})
        assert (await m.get("k")).data == {"a": "x" * 10_000}


async def test_slow_consumer_is_disconnected_then_catches_up(make_server: ServerFactory) -> None:
    """A client that stops reading is cut off (4008) once its queue is full, instead of
    slowing everyone down or silently losing events; on reconnect it gets every event."""
    srv = make_server(["--max-outbox-frames", "20", "--write-rate", "0"])
    try:
        map_name = f"flood-{uuid.uuid4().hex}"
        async with srv.client("writer") as writer:
            m = await writer.map(map_name)
            # A raw subscriber that never reads: the kernel buffers fill, then our queue.
            async with connect(
                f"ws://127.0.0.1:{srv.port}/v1/realtime", compression=None, max_size=None
            ) as stalled:
                await stalled.send(
                    orjson.dumps(
                        {"id": 1, "type": "hello", "token": srv.token("slow"), "client_id": "slow"}
                    ).decode()
                )
                await stalled.recv()
                await stalled.send(
                    orjson.dumps({"id": 2, "type": "subscribe", "sid": m.sid, "since": 0}).decode()
                )
                await stalled.recv()
                stalled.transport.pause_reading()  # stop reading, like a stuck client
                blob = "x" * 15_000
                for i in range(800):  # ~12 MB of events, far more than socket buffers hold
                    await m.set(f"k{i:04}", {"blob": blob})
                stalled.transport.resume_reading()
                close_code = None
                received = 0
                try:
                    async with asyncio.timeout(20):
                        async for _ in stalled:
                            received += 1
                except Exception:
                    pass
                close_code = stalled.close_code
            assert close_code == 4008, (close_code, received)
            assert 0 < received < 800  # cut off part-way, not after everything
            # The writer (and everyone else) carried on; a fresh client catches up fully.
            async with srv.client("slow") as again:
                m2 = await again.map(map_name, mode="open_existing")
                keys: list[str] = []
                page = await m2.get_items(page_size=100)
                while True:
                    keys.extend(item.key for item in page.items)
                    if not page.has_next_page:
                        break
                    page = await page.next_page()
                assert len(keys) == 800
    finally:
        srv.stop()
