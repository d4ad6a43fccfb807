"""The SDK's own cost per call, without a network or a server.

A `Client` is connected to an in-process loopback connection (`Loopback`) that answers
every request at once with the frames our server sends: for a write on a subscribed object,
the object's event, then the reply (as `sync_server` orders them). The same loopback is
driven by a bare client that only encodes the request with orjson and reads (and parses)
the frames back, in one task. The client library's cost per call is the SDK call's median
minus the same exchange's median done bare: what the SDK adds to sending a request and receiving
its frames (validation, request numbering, the pending-reply future and its timeout, decoding the
event and applying it to the object cache, decoding the reply into the item or data the
call returns).

Everything runs in this process's one thread, so each call is timed in CPU time of the thread
(`time.thread_time_ns`): other processes on a shared machine do not inflate it.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from websockets.exceptions import ConnectionClosedOK
from websockets.frames import Close

from sync_sdk import Client, ClientOptions

_TIME = "2026-01-01T00:00:00Z"
_TOKEN = (
    "eyJhbGciOiJIUzI1NiJ9."
    + "eyJleHAiOjQxMDI0NDQ4MDB9"  # {"exp":4102444800}
    + ".c2ln"
)


def _median_us(samples: list[int]) -> float:
    samples.sort()
    return round(samples[len(samples) // 2] / 1000, 1)


class _Server:
    """The frames our server answers each request with (objects kept just enough)."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}  # sid -> object snapshot
        self.subscribed: set[str] = set()
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self.origin = ""

    def _event(self, sid: str, name: str, **fields: Any) -> bytes:
        obj = self.objects[sid]
        return orjson.dumps(
            {
                "type": "event",
                "sid": sid,
                "kind": obj["kind"],
                "name": name,
                "event_id": fields.pop("event_id", obj["last_event_id"]),
                "origin": self.origin,
                **fields,
            }
        )

    def answer(self, frame: bytes | str) -> list[str]:
        req = orjson.loads(frame)
        rid, type_ = req["id"], req["type"]
        out: list[bytes] = []
        result: dict[str, Any]
        if type_ == "hello":
            self.origin = req["client_id"]
            result = {
                "connection_id": "CN" + "0" * 32,
                "identity": "bench",
                "account_sid": "AC" + "0" * 32,
                "service_sid": "IS" + "0" * 32,
                "token_expires_at": 4102444800,
                "heartbeat_interval": 30,
                "protocol": req["protocol"],
            }
        elif type_ == "open":
            prefix = {"document": "ET", "map": "MP", "list": "ES", "stream": "TO"}[req["kind"]]
            sid = prefix + secrets.token_hex(16)
            result = {
                "kind": req["kind"],
                "sid": sid,
                "unique_name": req["object_id"],
                "revision": "0",
                "data": {} if req["kind"] == "document" else None,
                "date_created": _TIME,
                "date_updated": _TIME,
                "date_expires": None,
                "created_by": "bench",
                "last_event_id": 0,
            }
            self.objects[sid] = result
        elif type_ == "subscribe":
            self.subscribed.add(req["sid"])
            result = {"last_event_id": self.objects[req["sid"]]["last_event_id"], "replayed": 0}
        elif type_ == "unsubscribe":
            self.subscribed.discard(req["sid"])
            result = {}
        elif type_ in ("item_set", "item_get"):
            sid, key = req["sid"], req["key"]
            item = self.items.get((sid, key))
            if type_ == "item_set":
                obj = self.objects[sid]
                obj["last_event_id"] += 1
                previous = item["data"] if item else None
                eid = obj["last_event_id"]
                item = {
                    "revision": str(eid),
                    "data": req["data"],
                    "date_created": _TIME,
                    "date_updated": _TIME,
                    "date_expires": None,
                    "created_by": "bench",
                    "last_event_id": eid,
                    "key": key,
                }
                self.items[sid, key] = item
                if sid in self.subscribed:
                    name = "item_added" if previous is None else "item_updated"
                    out.append(self._event(sid, name, item=item, previous_data=previous))
            assert item is not None
            result = item
        elif type_ == "document_set":
            sid = req["sid"]
            obj = self.objects[sid]
            obj["last_event_id"] += 1
            previous = obj["data"]
            obj.update(data=req["data"], revision=str(obj["last_event_id"]))
            if sid in self.subscribed:
                out.append(
                    self._event(
                        sid,
                        "updated",
                        data=req["data"],
                        previous_data=previous,
                        revision=obj["revision"],
                        date_updated=_TIME,
                        date_expires=None,
                    )
                )
            result = obj
        elif type_ == "stream_publish":
            message = {"sid": "TZ" + secrets.token_hex(16), "data": req["data"]}
            if req["sid"] in self.subscribed:
                out.append(
                    self._event(req["sid"], "message_published", event_id=None, message=message)
                )
            result = message
        else:
            raise AssertionError(f"loopback: unexpected request {type_}")
        out.append(orjson.dumps({"type": "reply", "id": rid, "result": result}))
        return [f.decode() for f in out]


class Loopback:
    """Stands in for the SDK's connection (`sync_sdk._transport.Connection`): a request is
    answered at once, and the answer arrives on the next turn of the event loop (as a
    transport's `data_received` would), handed to `on_text` while it is set and nothing is
    queued (as the connection does), else queued for a reader in `recv` / `async for`."""

    def __init__(self, server: _Server) -> None:
        self._server = server
        self._frames: deque[str] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self.close_code: int | None = None
        self.on_text: Callable[[str], None] | None = None

    def send_text_now(self, frame: bytes) -> bool:
        if self.close_code is not None:
            return False
        asyncio.get_running_loop().call_soon(self._arrive, self._server.answer(frame))
        return True

    async def send(self, frame: bytes | str, text: bool = True) -> None:
        if self.close_code is not None:
            raise ConnectionClosedOK(Close(1000, ""), Close(1000, ""), True)
        asyncio.get_running_loop().call_soon(self._arrive, self._server.answer(frame))

    def _arrive(self, frames: list[str]) -> None:
        on_text = self.on_text
        if on_text is not None and not self._frames:
            for frame in frames:
                on_text(frame)
            return
        self._frames.extend(frames)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def recv(self) -> str:
        while not self._frames:
            if self.close_code is not None:
                raise ConnectionClosedOK(Close(1000, ""), Close(1000, ""), True)
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        return self._frames.popleft()

    async def __aiter__(self) -> AsyncIterator[str]:
        try:
            while True:
                yield await self.recv()
        except ConnectionClosedOK:
            return

    async def close(self) -> None:
        self.close_code = 1000
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class _LoopbackClient(Client):
    """A Client whose connection is a `Loopback` (the public API and the request path are
    the real ones; only opening the socket is replaced)."""

    async def _open_socket(self, base_url: str) -> Any:
        return Loopback(_Server())


async def _time(fn: Callable[[], Awaitable[Any]], n: int) -> float:
    samples = []
    for _ in range(n):
        t0 = time.thread_time_ns()
        await fn()
        samples.append(time.thread_time_ns() - t0)
    return _median_us(samples)


async def measure(pad: str, n: int = 3000) -> dict[str, float]:
    """Median µs per call: the bare exchange, each SDK call, and the SDK minus the bare
    exchange (`sdk_*_library`)."""
    data = {"v": pad}
    async with _LoopbackClient(
        _TOKEN, ClientOptions(url="http://127.0.0.1:1", log_level="error")
    ) as client:
        m = await client.map("costs-map")
        d = await client.document("costs-doc")
        s = await client.stream("costs-stream")
        bare_server = _Server()
        loop_conn = Loopback(bare_server)
        sids: dict[str, str] = {}
        for kind in ("map", "document", "stream"):
            opened = bare_server.answer(
                orjson.dumps({"id": 1, "type": "open", "kind": kind, "object_id": kind})
            )
            sids[kind] = orjson.loads(opened[0])["result"]["sid"]
            bare_server.subscribed.add(sids[kind])
        request_id = 1

        def bare(kind: str, type_: str, frames: int, **params: Any) -> Callable[[], Awaitable[Any]]:
            """The same exchange as an SDK call, without the SDK: encode, send, read back."""

            async def exchange() -> None:
                nonlocal request_id
                request_id += 1
                await loop_conn.send(
                    orjson.dumps({**params, "id": request_id, "type": type_, "sid": sids[kind]})
                )
                for _ in range(frames):
                    orjson.loads(await loop_conn.recv())

            return exchange

        calls: dict[str, Callable[[], Awaitable[Any]]] = {
            "bare_map_set": bare("map", "item_set", 2, key="k", data=data),
            "sdk_map_set": lambda: m.set("k", data),
            "bare_map_get": bare("map", "item_get", 1, key="k"),
            "sdk_map_get": lambda: m.get("k"),
            "bare_document_set": bare("document", "document_set", 2, data=data),
            "sdk_document_set": lambda: d.set(data),
            "bare_stream_publish": bare("stream", "stream_publish", 2, data=data),
            "sdk_stream_publish": lambda: s.publish_message(data),
        }
        for fn in calls.values():  # warm-up
            for _ in range(200):
                await fn()
        out: dict[str, float] = {}
        rounds = 5
        samples: dict[str, list[float]] = {k: [] for k in calls}
        for _ in range(rounds):  # alternate, so that other load hits every call alike
            for name, fn in calls.items():
                samples[name].append(await _time(fn, max(n // rounds, 1)))
        for name, values in samples.items():
            out[name] = min(values)  # the least disturbed round's median
        for name in list(calls):
            if name.startswith("sdk_"):
                bare_us = out["bare_" + name[4:]]
                out[name + "_library"] = round(max(out[name] - bare_us, 0.0), 1)
    return out


if __name__ == "__main__":
    from .common import run_async

    print(run_async(measure("x" * 60)))
