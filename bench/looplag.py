"""The event loop's lag while one writer commits to SQLite storage back to back: what every
other connection of the server waits, at worst, for a turn of the loop while that happens.
A ticker sleeps 1 ms at a time and records how late it wakes; the writer yields every 20
writes (as a connection's requests leave room for others). SQLite checkpoints its WAL about
every thousand pages, and a checkpoint fsyncs: inline on the loop that stalls everyone.

    python -m bench.looplag [--writes 6000]

Runs whatever `sync_server` the interpreter imports: `PYTHONPATH=/other/checkout` measures
another one.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from pathlib import Path

import orjson

from sync_server.storage.sqlite import SQLiteStorage

from .common import percentile, run_async

SERVICE = "IS" + "0" * 32


async def measure(writes: int) -> dict[str, float]:
    folder = tempfile.mkdtemp(prefix="looplag-")
    storage = SQLiteStorage(Path(folder) / "lag.db")
    await storage.start()
    lags: list[float] = []
    done = False

    async def ticker() -> None:
        while not done:
            started = time.perf_counter()
            await asyncio.sleep(0.001)
            lags.append((time.perf_counter() - started - 0.001) * 1e3)

    try:
        m = await storage.create_object(
            SERVICE, "map", unique_name=None, data=None, ttl=None, created_by="bench"
        )
        ticking = asyncio.ensure_future(ticker())
        started = time.perf_counter()
        for n in range(writes):
            await storage.set_item(
                SERVICE,
                "map",
                m.sid,
                f"k{n % 100}",
                data={"n": n, "pad": "x" * 200},
                merge=False,
                if_match=None,
                ttl=None,
                origin=None,
                created_by="bench",
            )
            if n % 20 == 0:
                await asyncio.sleep(0)
        elapsed = time.perf_counter() - started
        done = True
        await ticking
    finally:
        await storage.close()
        shutil.rmtree(folder, ignore_errors=True)
    return {
        "writes_per_s": round(writes / elapsed),
        "lag_p50_ms": round(percentile(lags, 50), 3),
        "lag_p99_ms": round(percentile(lags, 99), 3),
        "lag_max_ms": round(max(lags), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writes", type=int, default=6000)
    args = parser.parse_args()
    print(orjson.dumps(run_async(measure(args.writes))).decode())


if __name__ == "__main__":
    main()
