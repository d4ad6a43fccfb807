"""In-process costs of the pieces of one `map.set` round trip, measured in the bench process
(no network) so the report can say where the time of the op round trip goes:

- `validate_request`: the server's strict pydantic validation of the `item_set` frame;
- `storage_set_item` / `storage_get_item`: SQLiteStorage (inline, synchronous NORMAL, as the
  server runs it) writing (until acknowledged: appended to its write log, applied to SQLite
  after with the writes around it) and reading an item;
- `service_set_item`: SyncService.set_item on that storage: the storage write plus argument
  checks, ACL lookup, rate limiter and publishing the event;
- `reply_encode`: building and encoding the reply frame;
- `sdk_codec`: the SDK's sans-I/O core encoding the request and decoding the reply;
- `server_ping` / `server_ping_asgi` (bench/wscost.py): the server's whole cost of one `ping`
  message, from the frame's bytes to its reply's, on our realtime protocol and on the ASGI
  route (uvicorn's WebSocket protocol, the ASGI hop, Starlette);
- `sdk_*` (bench/sdkcost.py): whole SDK calls (`map.set`, `map.get`, `document.set`,
  `stream.publish_message`) against an in-process loopback connection, and
  `sdk_*_library`: what the client library adds per call to the same exchange done bare
  (encode, send, read and parse the frames back).

Each is the median of per-call times over `n` sequential calls.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
from sync_generated import protocol as p

from sync_sdk._protocol import UNNUMBERED, ClientProtocol
from sync_server import wire
from sync_server.broker import InProcessBroker
from sync_server.config import Limits
from sync_server.credentials import load_credentials
from sync_server.service import Caller, SyncService
from sync_server.storage.base import ServiceRecord
from sync_server.storage.sqlite import SQLiteStorage
from sync_server.tokens import mint_token

from . import sdkcost, wscost
from .common import item_set_request, percentile

SVC = "IS" + "0" * 32


def _median_us(samples: list[int]) -> float:
    return round(percentile([s / 1000 for s in samples], 50), 1)


def _time_sync(fn: Callable[[], Any], n: int) -> float:
    samples = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - t0)
    return _median_us(samples)


async def _time_async(fn: Callable[[], Awaitable[Any]], n: int) -> float:
    samples = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        await fn()
        samples.append(time.perf_counter_ns() - t0)
    return _median_us(samples)


def bench_token(creds: Any) -> str:
    """A token for identity "bench" on the service `SVC`, from `creds`."""
    return mint_token(
        account_sid=creds.account_sid,
        api_key_sid=creds.api_key_sid,
        api_secret=creds.api_secret,
        service_sid=SVC,
        identity="bench",
        ttl=3600,
    )


async def measure(pad: str, n: int = 3000) -> dict[str, float]:
    data = {"v": pad}
    tmp = Path(tempfile.mkdtemp(prefix="sync-bench-costs-"))
    storage = SQLiteStorage(tmp / "sync.db")
    await storage.start()
    try:
        now = wire.now()
        await storage.put_service(
            ServiceRecord(sid=SVC, account_sid="AC" + "0" * 32, date_created=now, date_updated=now)
        )
        creds = load_credentials(tmp, env={})  # a generated development set
        unlimited = Limits(write_rate=0, create_rate=0)  # as the bench servers run
        service = SyncService(storage, InProcessBroker(), credentials=creds, limits=unlimited)
        caller = Caller(SVC, "bench", "bench-client")
        obj = await storage.create_object(
            SVC, "map", unique_name="costs", data=None, ttl=None, created_by="bench"
        )
        request = item_set_request(obj.sid, data)

        async def storage_set() -> Any:
            return await storage.set_item(
                SVC,
                "map",
                obj.sid,
                "k",
                data=data,
                merge=False,
                if_match=None,
                ttl=None,
                origin="bench-client",
                created_by="bench",
            )

        async def service_set() -> Any:
            return await service.set_item(
                caller, obj.sid, None, "k", data, merge=False, if_match=None, ttl=None
            )

        item, _ = await storage_set()

        def reply_encode() -> str:
            result = wire.item_snapshot(item)
            return orjson.dumps({"type": "reply", "id": 123456, "result": result}).decode()

        reply = reply_encode()
        client = ClientProtocol()

        def sdk_codec() -> Any:
            client.encode_request(
                {
                    "id": UNNUMBERED,
                    "type": "item_set",
                    "sid": obj.sid,
                    "index": None,
                    "key": "k",
                    "data": data,
                    "merge": False,
                    "ttl": None,
                    "if_match": None,
                    "if_absent": False,
                }
            )
            return client.decode(reply)

        await _time_async(storage_set, 200)  # warm-up
        return {
            "validate_request": _time_sync(
                lambda: p.REQUEST_ADAPTER.validate_json(request, strict=True), n
            ),
            "storage_set_item": await _time_async(storage_set, n),
            "storage_get_item": await _time_async(
                lambda: storage.get_item(SVC, "map", obj.sid, "k"), n
            ),
            "service_set_item": await _time_async(service_set, n),
            "reply_encode": _time_sync(reply_encode, n),
            "sdk_codec": _time_sync(sdk_codec, n),
            **await wscost.measure(service, bench_token(creds), n),
            **await sdkcost.measure(pad, n),
        }
    finally:
        await storage.close()
        shutil.rmtree(tmp, ignore_errors=True)
