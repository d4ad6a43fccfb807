"""Client worker processes. The parent drives each one over a `multiprocessing` pipe with
commands (dicts with an `op`), and every command gets exactly one answer:

  connect     open `n` subscriber connections of a stack (a reader task each)
  arm         start counting the deliveries of run `run` (frames of other runs are ignored)
  collect     wait (bounded) until `expected` deliveries arrived, then report count, bytes,
              first/last receipt (wall clock, ns) and every latency (ns) as an int64 array
  close       close every connection
  write_load  open `conns` connections of our protocol and run acknowledged `item_set`s from
              `start_ns` to `end_ns`; report counts, errors and latencies
  exit        stop

Latency = receipt time.time_ns() - the send time.time_ns() embedded by the publisher: both
processes read the same clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from array import array
from multiprocessing.connection import Connection
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from .clients import Stack, _recv_reply, open_ours, open_subscriber
from .common import raise_nofile, run_async

_ITEM_EVENTS = ("item_added", "item_updated")


class Collector:
    """Deliveries of the armed run, shared by every reader task of the worker."""

    def __init__(self) -> None:
        self.run = -1
        self.expected = 0
        self.reset(-1, 0)

    def reset(self, run: int, expected: int) -> None:
        self.run = run
        self.expected = expected
        self.count = 0
        self.nbytes = 0
        self.first_ns = 0
        self.last_ns = 0
        self.latencies = array("q")
        self.done = asyncio.Event()
        if expected <= 0:
            self.done.set()

    def record(self, data: dict[str, Any], size: int) -> None:
        if data.get("r") != self.run:
            return
        now = time.time_ns()
        self.latencies.append(now - data["t"])
        self.count += 1
        self.nbytes += size
        if not self.first_ns:
            self.first_ns = now
        self.last_ns = now
        if self.count >= self.expected:
            self.done.set()


async def _read_ours(ws: ClientConnection, col: Collector) -> None:
    async for msg in ws:
        obj = orjson.loads(msg)
        if obj.get("type") != "event":
            continue
        name = obj.get("name")
        if name == "message_published":
            col.record(obj["message"]["data"], len(msg))
        elif name in _ITEM_EVENTS:
            col.record(obj["item"]["data"], len(msg))


async def _read_raw(ws: ClientConnection, col: Collector) -> None:
    async for msg in ws:
        obj = orjson.loads(msg)
        if isinstance(obj, dict):
            col.record(obj["message"]["data"], len(msg))


async def _read_socketio(ws: ClientConnection, col: Collector) -> None:
    async for msg in ws:
        if msg == "2":
            await ws.send("3")
        elif isinstance(msg, str) and msg.startswith("42"):
            arr = orjson.loads(msg[2:])
            col.record(arr[1]["message"]["data"], len(msg))


_READERS = {
    "ours": _read_ours,
    "raw": _read_raw,
    "socketio": _read_socketio,
    "channels": _read_raw,
}


class Worker:
    def __init__(self, pipe: Connection, index: int) -> None:
        self.pipe = pipe
        self.index = index
        self.col = Collector()
        self.conns: list[ClientConnection] = []
        self.readers: set[asyncio.Task[None]] = set()

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            cmd: dict[str, Any] = await loop.run_in_executor(None, self.pipe.recv)
            op = cmd["op"]
            if op == "exit":
                await self.close_all()
                self.pipe.send({"ok": True})
                return
            try:
                result = await getattr(self, "op_" + op)(cmd)
            except Exception as exc:
                result = {"error": f"{type(exc).__name__}: {exc}"}
            self.pipe.send(result)

    async def _reader(self, stack: Stack, ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            await _READERS[stack](ws, self.col)

    async def op_connect(self, cmd: dict[str, Any]) -> dict[str, Any]:
        stack: Stack = cmd["stack"]
        n: int = cmd["n"]
        gate = asyncio.Semaphore(cmd.get("parallel", 50))
        errors: list[str] = []
        t0 = time.perf_counter()

        async def one() -> None:
            async with gate:
                try:
                    ws = await open_subscriber(
                        stack, cmd["base"], cmd.get("token", ""), cmd["sids"]
                    )
                except Exception as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    return
            self.conns.append(ws)
            task = asyncio.create_task(self._reader(stack, ws))
            self.readers.add(task)
            task.add_done_callback(self.readers.discard)

        async with asyncio.timeout(cmd.get("timeout", 120)):
            await asyncio.gather(*(one() for _ in range(n)))
        return {
            "connected": n - len(errors),
            "errors": errors[:3],
            "seconds": time.perf_counter() - t0,
        }

    async def op_arm(self, cmd: dict[str, Any]) -> dict[str, Any]:
        self.col.reset(cmd["run"], cmd["expected"])
        return {"ok": True}

    async def op_collect(self, cmd: dict[str, Any]) -> dict[str, Any]:
        col = self.col
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(col.done.wait(), cmd["timeout"])
        result = {
            "count": col.count,
            "expected": col.expected,
            "bytes": col.nbytes,
            "first_ns": col.first_ns,
            "last_ns": col.last_ns,
            "latencies": col.latencies.tobytes(),
        }
        col.reset(-1, 0)
        return result

    async def close_all(self) -> int:
        conns, self.conns = self.conns, []

        async def close(ws: ClientConnection) -> None:
            with contextlib.suppress(Exception):
                await ws.close()

        gate = asyncio.Semaphore(200)

        async def gated(ws: ClientConnection) -> None:
            async with gate:
                await close(ws)

        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(30):
                await asyncio.gather(*(gated(ws) for ws in conns))
        for task in list(self.readers):
            task.cancel()
        return len(conns)

    async def op_close(self, cmd: dict[str, Any]) -> dict[str, Any]:
        return {"closed": await self.close_all()}

    async def op_write_load(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """`conns` connections, each writing sequentially (next write after the ack)."""
        sids: list[str] = cmd["sids"]
        hot: bool = cmd["hot"]
        data = {"v": cmd["pad"]}
        latencies = array("q")
        counts = {"ok": 0, "errors": 0}
        first_error: list[str] = []

        async def writer(j: int) -> None:
            ws = await open_ours(cmd["base"], cmd["token"], [], f"w{self.index}-{j}")
            try:
                delay = (cmd["start_ns"] - time.time_ns()) / 1e9
                if delay > 0:
                    await asyncio.sleep(delay)
                end_ns = cmd["end_ns"]
                offset = self.index * 1000 + j * 7
                request_id = 10
                for i in range(cmd["max_writes"]):
                    if time.time_ns() >= end_ns:
                        break
                    sid = sids[0] if hot else sids[(offset + i) % len(sids)]
                    key = "hot" if hot else f"k{j}"
                    request_id += 1
                    frame = orjson.dumps(
                        {"id": request_id, "type": "item_set", "sid": sid, "key": key, "data": data}
                    )
                    t0 = time.perf_counter_ns()
                    await ws.send(frame, text=True)
                    try:
                        await _recv_reply(ws, request_id)
                    except RuntimeError as exc:
                        counts["errors"] += 1
                        if not first_error:
                            first_error.append(str(exc))
                        continue
                    latencies.append(time.perf_counter_ns() - t0)
                    counts["ok"] += 1
            finally:
                await ws.close()

        async with asyncio.timeout(cmd["timeout"]):
            results = await asyncio.gather(
                *(writer(j) for j in range(cmd["conns"])), return_exceptions=True
            )
        failures = [f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)]
        return {
            "ok": counts["ok"],
            "errors": counts["errors"],
            "failures": failures[:3],
            "first_error": first_error[:1],
            "latencies": latencies.tobytes(),
        }


def worker_main(pipe: Connection, index: int) -> None:
    """Entry point of a worker process (multiprocessing `spawn`)."""
    raise_nofile()
    run_async(Worker(pipe, index).serve())
