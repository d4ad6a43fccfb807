"""The server's CPU per request, in-process: `C` realtime connections (our WebSocket protocol
on bench/wscost.py's fake transport) each send requests one after another (the next
once the reply is written), over `objects` maps or documents; process CPU time per request,
and optionally a cProfile of the run ranked by own and inclusive time.

    python -m bench.serverprof --storage sqlite --op item_set
    python -m bench.serverprof --storage postgres --op item_set --profile 25

`--storage postgres` uses a fresh database on SYNC_BENCH_DATABASE_URL and the Redis broker on
SYNC_BENCH_REDIS_URL (both as bench/cluster.py). Runs whatever `sync_server` the interpreter
imports, so the same file measures another checkout when run with that checkout's venv.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import orjson

from sync_server import wire
from sync_server.broker import Broker, InProcessBroker
from sync_server.config import Limits
from sync_server.credentials import load_credentials
from sync_server.service import SyncService
from sync_server.storage.base import ServiceRecord, Storage
from sync_server.storage.sqlite import SQLiteStorage
from sync_server.webhooks import WebhookDispatcher
from sync_server.ws_server import RealtimeWebSocket

from .costs import SVC, bench_token
from .wscost import FakeTransport, client_frame, connect, exchange, realtime_connection

DATABASE_URL = os.environ.get(
    "SYNC_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("SYNC_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def _request(op: str, sid: str, i: int, pad: str) -> dict[str, Any]:
    if op == "item_set":
        return {
            "id": 7,
            "type": "item_set",
            "sid": sid,
            "key": "k",
            "data": {"v": pad, "i": i},
            "merge": False,
            "ttl": None,
            "if_match": None,
            "if_absent": False,
        }
    if op == "item_get":
        return {"id": 7, "type": "item_get", "sid": sid, "key": "k"}
    if op == "stream_fanout":
        return {"id": 7, "type": "stream_publish", "sid": sid, "data": {"v": pad, "i": i}}
    if op == "document_set":
        return {
            "id": 7,
            "type": "document_set",
            "sid": sid,
            "data": {"v": pad, "i": i},
            "merge": False,
            "if_match": None,
            "ttl": None,
        }
    raise ValueError(op)


def _ranked(profiler: cProfile.Profile, top: int) -> str:
    """The `top` functions of a profile by own time, then by inclusive time."""
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return text.getvalue()


async def _make(storage_kind: str, tmp: Path, local: bool) -> tuple[Storage, Broker, str | None]:
    if storage_kind == "sqlite":
        return SQLiteStorage(tmp / "sync.db"), InProcessBroker(), None
    import asyncpg

    from sync_server.redis_broker import RedisBroker
    from sync_server.storage.postgres import PostgresStorage

    name = "sync_prof_" + uuid.uuid4().hex[:12]
    admin = await asyncpg.connect(DATABASE_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = urlunsplit(urlsplit(DATABASE_URL)._replace(path="/" + name))
    broker = InProcessBroker() if local else RedisBroker(REDIS_URL, prefix=name)
    return PostgresStorage(url), broker, name


async def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="sync-serverprof-"))
    storage, broker, db = await _make(args.storage, tmp, args.local_broker)
    await storage.start()
    await broker.start()
    creds = load_credentials(tmp, env={})
    webhooks = WebhookDispatcher(auth_token=creds.auth_token, storage=storage)
    service = SyncService(
        storage,
        broker,
        credentials=creds,
        limits=Limits(write_rate=0, create_rate=0),
        webhooks=webhooks,
    )
    try:
        t = wire.now()
        await storage.put_service(
            ServiceRecord(sid=SVC, account_sid=creds.account_sid, date_created=t, date_updated=t)
        )
        if args.op == "stream_fanout":
            return await _fanout(args, service)
        kind: Literal["document", "map"] = "document" if args.op == "document_set" else "map"
        sids = []
        for i in range(args.objects):
            obj = await storage.create_object(
                SVC, kind, unique_name=f"o{i}", data=None, ttl=None, created_by="bench"
            )
            sids.append(obj.sid)
            if kind == "map":
                await storage.set_item(
                    SVC,
                    "map",
                    obj.sid,
                    "k",
                    data={"v": 0},
                    merge=False,
                    if_match=None,
                    ttl=None,
                    origin=None,
                    created_by="bench",
                )
        token = bench_token(creds)

        conns: list[tuple[RealtimeWebSocket, FakeTransport]] = []
        for c in range(args.conns):
            proto, tr = realtime_connection(service, 50000 + c)
            await connect(proto, tr, token, f"c{c}")
            conns.append((proto, tr))
        pad = "x" * args.pad
        # Frames prepared up front: the client's cost is not the server's.
        per_conn = args.n // args.conns
        frames = [
            [
                client_frame(_request(args.op, sids[(c + i * args.conns) % len(sids)], i, pad))
                for i in range(per_conn)
            ]
            for c in range(args.conns)
        ]

        async def worker(c: int, frames: list[bytes]) -> None:
            proto, tr = conns[c]
            for f in frames:
                await exchange(proto, tr, f)

        async def once(count: int) -> None:
            await asyncio.gather(*(worker(c, frames[c][:count]) for c in range(args.conns)))

        await once(max(per_conn // 10, 1))  # warm-up
        profiler = (
            (cProfile.Profile(time.process_time) if args.cpu_clock else cProfile.Profile())
            if args.profile
            else None
        )
        t0, wall0 = os.times(), time.perf_counter()
        if profiler:
            profiler.enable()
        await once(per_conn)
        if profiler:
            profiler.disable()
        t1, wall = os.times(), time.perf_counter() - wall0
        user, system = t1.user - t0.user, t1.system - t0.system
        total = per_conn * args.conns
        out: dict[str, Any] = {
            "storage": args.storage,
            "op": args.op,
            "requests": total,
            "cpu_us_per_request": round((user + system) * 1e6 / total, 1),
            "user_us": round(user * 1e6 / total, 1),
            "system_us": round(system * 1e6 / total, 1),
            "requests_per_s": round(total / wall),
        }
        if profiler:
            out["profile"] = _ranked(profiler, args.profile)
        for proto, _ in conns:
            proto.shutdown()
        await asyncio.sleep(0.05)
        return out
    finally:
        await webhooks.close()
        await broker.close()
        await storage.close()
        shutil.rmtree(tmp, ignore_errors=True)
        if db is not None:
            import asyncpg

            admin = await asyncpg.connect(DATABASE_URL)
            await admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            await admin.close()


async def _fanout(args: argparse.Namespace, service: SyncService) -> dict[str, Any]:
    """`conns` subscribers of one stream and one publisher sending `n` messages one after
    another: the server's CPU per delivery (the publish's own work shared out)."""
    creds = service.credentials
    stream = await service.storage.create_object(
        SVC, "stream", unique_name="fanout", data=None, ttl=None, created_by="bench"
    )
    token = bench_token(creds)
    subscribers = []
    for c in range(args.conns):
        proto, tr = realtime_connection(service, 50000 + c)
        await connect(proto, tr, token, f"s{c}")
        await exchange(proto, tr, client_frame({"id": 2, "type": "subscribe", "sid": stream.sid}))
        subscribers.append(proto)
    publisher, pub_t = realtime_connection(service, 49999)
    await connect(publisher, pub_t, token, "publisher")
    pad = "x" * args.pad
    frames = [client_frame(_request("stream_fanout", stream.sid, i, pad)) for i in range(args.n)]
    for f in frames[: args.n // 10]:  # warm-up
        await exchange(publisher, pub_t, f)
    await asyncio.sleep(0.01)
    profiler = cProfile.Profile() if args.profile else None
    t0, wall0 = os.times(), time.perf_counter()
    if profiler:
        profiler.enable()
    for f in frames:
        await exchange(publisher, pub_t, f)
    await asyncio.sleep(0)  # the last turn's writes
    if profiler:
        profiler.disable()
    t1, wall = os.times(), time.perf_counter() - wall0
    deliveries = args.n * args.conns
    cpu = (t1.user - t0.user) + (t1.system - t0.system)
    out: dict[str, Any] = {
        "op": "stream_fanout",
        "subscribers": args.conns,
        "messages": args.n,
        "cpu_us_per_delivery": round(cpu * 1e6 / deliveries, 2),
        "deliveries_per_s": round(deliveries / wall),
    }
    if profiler:
        out["profile"] = _ranked(profiler, args.profile)
    for proto in (*subscribers, publisher):
        proto.shutdown()
    await asyncio.sleep(0.05)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--storage", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument(
        "--op",
        choices=("item_set", "item_get", "document_set", "stream_fanout"),
        default="item_set",
        help="stream_fanout: `conns` subscribers of a stream, one publisher: CPU per delivery",
    )
    ap.add_argument("--conns", type=int, default=8)
    ap.add_argument("--objects", type=int, default=100)
    ap.add_argument("-n", type=int, default=8000)
    ap.add_argument("--pad", type=int, default=100)
    ap.add_argument("--profile", type=int, default=0, help="print the top N functions")
    ap.add_argument("--uvloop", action="store_true")
    ap.add_argument("--local-broker", action="store_true", help="postgres without Redis")
    ap.add_argument("--cpu-clock", action="store_true", help="profile in process CPU time")
    args = ap.parse_args()
    if args.uvloop:
        import uvloop

        uvloop.install()
    out = asyncio.run(run(args))
    profile = out.pop("profile", None)
    print(orjson.dumps(out).decode())
    if profile:
        print(profile)


if __name__ == "__main__":
    main()
