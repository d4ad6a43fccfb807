"""Scenario 7: two nodes sharing PostgreSQL + Redis, measured against one node of the same
configuration in the same run.

- propagation: client A `doc.set` -> client B `updated`, with A and B on the same node vs
  on different nodes (the event crosses Redis) -> `cluster_propagation_ratio` (cross / same).
- writes: acknowledged writes spread over 100 objects, every writer on one node vs the
  writers split over both nodes -> writes/s per node and for 2 nodes together; the best of
  `fanout_rounds` rounds (each round: one node, two nodes, pgbench), as for fan-out: other
  work on a shared machine only slows a round down (every round's figure and the median are
  kept beside it).
- fan-out: S subscribers of one stream (and one map) all on one node vs split evenly over
  the two nodes; the publisher is on the first node -> `cluster_fanout_scaling`
  (two nodes' deliveries/s / one node's).
- the limit: PostgreSQL's own `pgbench` on the same database, one-row updates of 100 rows from
  8 clients (`-c 8 -j 2`, the server's synchronous_commit) -> `pgbench.tps`, beside our
  writes/s (None when pgbench is not installed). When PostgreSQL runs on this machine, the CPU
  its processes spend per write (ours) and per update (pgbench) is reported too
  (`postgres_cpu_us_per_write`): where a write's cost goes besides the node.
- beside it, Django Channels on its Redis channel layer (channels_redis RedisChannelLayer):
  the same S subscribers in one process vs split over two processes sharing the layer, the
  publisher on the first -> `cluster_channels_fanout_scaling`, and ours / Channels per layout.

PostgreSQL and Redis come from SYNC_BENCH_DATABASE_URL / SYNC_BENCH_REDIS_URL (default: the
local services); a fresh database is created for the run and dropped after it.
`python -m bench.run --only cluster_writes` runs the writes and pgbench alone. The nodes run
`SYNC_BENCH_SERVER_PYTHON` when set (another checkout's venv python: its code), for before /
after comparisons in one session.
"""

from __future__ import annotations

import asyncio
import glob
import os
import re
import shutil
import time
import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson

from sync_sdk import Client, ClientOptions

from .clients import AckPublisher, open_raw
from .common import (
    Envelope,
    ServerProc,
    baseline_server,
    our_server,
    percentile,
    ratio,
    summary_us,
)
from .scenarios import Bench

# What the Channels two-process comparison and the end of the run take on a slow machine
# (about 70 s measured, then stopping the nodes and writing the report).
_CHANNELS_RESERVE_S = 150

DATABASE_URL = os.environ.get(
    "SYNC_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("SYNC_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(DATABASE_URL, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def run(bench: Bench, *, writes_only: bool = False) -> dict[str, Any]:
    try:
        import redis.asyncio as redis

        await _admin("SELECT 1")
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
        try:
            await client.ping()
        finally:
            await client.aclose()
    except Exception as exc:
        reason = f"PostgreSQL or Redis unavailable: {exc!r}"
        bench.log(f"  skipped: {reason}")
        return {"skipped": reason}
    name = "sync_bench_" + uuid.uuid4().hex[:12]
    await _admin(f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(DATABASE_URL)._replace(path="/" + name))
    data_dir = bench.tmp / "cluster"
    data_dir.mkdir(parents=True, exist_ok=True)
    args = [
        "--storage",
        "postgres",
        "--database-url",
        url,
        "--broker",
        "redis",
        "--redis-url",
        REDIS_URL,
        "--redis-prefix",
        name,
    ]
    nodes: list[ServerProc] = []
    try:
        for i in range(2):
            srv = our_server(data_dir, args)
            srv.name = f"node{i + 1}"
            nodes.append(bench.start_server(srv))
        bench.log(f"  nodes :{nodes[0].port} :{nodes[1].port} (PostgreSQL {name}, Redis)")
        out: dict[str, Any] = {"database": "postgresql", "broker": "redis", "nodes": 2}
        if not writes_only:
            out["propagation"] = await _propagation(bench, nodes)
            bench.log(f"  propagation {out['propagation']}")
        out["writes"], out["pgbench"] = await _writes(bench, nodes, url)
        if not writes_only:
            out["fanout"] = await _fanout(bench, nodes)
            left = bench.time_left()
            if left < _CHANNELS_RESERVE_S:
                # The last comparison, skipped rather than lose the whole run to the watchdog.
                out["channels"] = {
                    "skipped": f"{left:.0f} s were left before the run's deadline (--deadline); "
                    f"this comparison and the run's end need about {_CHANNELS_RESERVE_S} s"
                }
                bench.log(f"  Django Channels (Redis layer): {out['channels']['skipped']}")
            else:
                out["channels"] = await _channels_fanout(bench, name)
        return out
    finally:
        for srv in nodes:
            bench.stop_server(srv)
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _client(bench: Bench, srv: ServerProc, identity: str) -> Client:
    return Client(bench.token(srv, identity), ClientOptions(url=srv.http_url, log_level="error"))


async def _propagation(bench: Bench, nodes: list[ServerProc]) -> dict[str, Any]:
    """Same-node and cross-node pairs measured alternately, round by round."""
    cfg = bench.cfg
    loop = asyncio.get_running_loop()
    waiter: list[asyncio.Future[int]] = []
    pad = bench.pad

    def on_updated(event: Any) -> None:
        if waiter and not waiter[0].done() and not event.is_local:
            waiter[0].set_result(time.perf_counter_ns())

    async with (
        _client(bench, nodes[0], "prop-writer") as writer,
        _client(bench, nodes[0], "prop-same") as same,
        _client(bench, nodes[1], "prop-cross") as cross,
    ):
        # One document per pair; the writer (node 1) alternates between them round by round.
        targets = {}
        for label, reader in (("same_node", same), ("cross_node", cross)):
            name = f"bench-cluster-prop-{label}"
            (await reader.document(name)).on("updated", on_updated)
            targets[label] = await writer.document(name)
        readers: dict[str, list[int]] = {"same_node": [], "cross_node": []}

        async def once(label: str, i: int) -> int:
            fut: asyncio.Future[int] = loop.create_future()
            waiter[:] = [fut]
            t0 = time.perf_counter_ns()
            await targets[label].set({"seq": i, "v": pad})
            return await asyncio.wait_for(fut, 10) - t0

        per_round = max(cfg.prop_n // cfg.rounds // 2, 1)
        async with asyncio.timeout(180):
            for i in range(30):
                for label in readers:
                    await once(label, i)
            for _ in range(cfg.rounds):
                for label, lat in readers.items():
                    for i in range(per_round):
                        lat.append(await once(label, i))
    s, c = summary_us(readers["same_node"]), summary_us(readers["cross_node"])
    return {
        "same_node": s,
        "cross_node": c,
        "ratio_p50": ratio(c["p50_us"], s["p50_us"]),
        "ratio_p99": ratio(c["p99_us"], s["p99_us"]),
    }


def _postgres_cpu_seconds() -> float | None:
    """CPU used so far by the local PostgreSQL: every `postgres` process, plus what the
    postmaster's exited children used (its cutime/cstime). None if none runs here."""
    ticks, postmaster = 0, None
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                fields = f.read().rsplit(")", 1)
        except OSError:
            continue
        if not fields[0].endswith("(postgres"):
            continue
        rest = fields[1].split()
        ticks += int(rest[11]) + int(rest[12])  # utime, stime
        pid = int(stat.split("/")[2])
        if rest[1] != str(pid) and (postmaster is None or pid < postmaster[0]):
            postmaster = (pid, int(rest[13]) + int(rest[14]))  # cutime, cstime
    if postmaster is None and ticks == 0:
        return None
    return (ticks + (postmaster[1] if postmaster else 0)) / os.sysconf("SC_CLK_TCK")


async def _writes(
    bench: Bench, nodes: list[ServerProc], url: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Writes/s on one node and on two, and pgbench's limit, round after round (see the
    module docstring): each one's best round, with every round's figure and the median."""
    cfg = bench.cfg
    token = bench.token(nodes[0], "bench-cluster-writer")
    async with _client(bench, nodes[0], "bench-cluster-setup") as setup:
        sids = [
            (await setup.map(f"bench-cluster-write-{i}")).sid for i in range(cfg.spread_objects)
        ]
    rounds: dict[str, list[dict[str, Any]]] = {"one_node": [], "two_nodes": []}
    limits: list[dict[str, Any]] = []
    for _ in range(cfg.fanout_rounds):
        for label, servers in (("one_node", nodes[0]), ("two_nodes", nodes)):
            pg_before = _postgres_cpu_seconds()
            result = await bench._write_load(servers, token, sids, False, label)
            pg_after = _postgres_cpu_seconds()
            count = result.get("writes") or 0
            if pg_before is not None and pg_after is not None and count:
                result["postgres_cpu_us_per_write"] = round((pg_after - pg_before) / count * 1e6)
            rounds[label].append(result)
            bench.log(
                f"  writes {label}: {result['writes_per_s']} writes/s, "
                f"p50 {result['p50_us']} µs, errors {result['errors']}, PostgreSQL CPU "
                f"{result.get('postgres_cpu_us_per_write')} µs/write"
            )
        limits.append(await _pgbench(bench, url))
    out: dict[str, Any] = {"clients": cfg.write_conns, "objects": len(sids)}
    for label, results in rounds.items():
        # The best round's figures, but every round's failed writes: none may hide.
        out[label] = {**_best(results, "writes_per_s"), "errors": sum(r["errors"] for r in results)}
    out["two_nodes_vs_one"] = ratio(
        out["two_nodes"]["writes_per_s"], out["one_node"]["writes_per_s"]
    )
    return out, _best(limits, "tps")


def _best(results: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """The round with the highest `key`, with every round's `key` and their median."""
    measured = [r for r in results if r.get(key) is not None]
    if not measured:
        return results[-1]
    values = [r[key] for r in measured]
    best = max(measured, key=lambda r: r[key])
    return {**best, f"rounds_{key}": values, f"median_{key}": round(percentile(values, 50))}


_PGBENCH_SCRIPT = "\\set id random(1, 100)\nUPDATE pgbench_one_row SET n = n + 1 WHERE id = :id;\n"


async def _pgbench(bench: Bench, url: str) -> dict[str, Any]:
    """PostgreSQL's own ceiling for one-row durable updates on this box (see the docstring)."""
    exe = shutil.which("pgbench") or next(
        iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/pgbench"), reverse=True)), None
    )
    if exe is None:
        return {"tps": None, "skipped": "pgbench not found"}
    import asyncpg

    conn = await asyncpg.connect(url, timeout=5)
    try:
        await conn.execute(
            "DROP TABLE IF EXISTS pgbench_one_row; "
            "CREATE TABLE pgbench_one_row (id INT PRIMARY KEY, n BIGINT NOT NULL DEFAULT 0); "
            "INSERT INTO pgbench_one_row (id) SELECT generate_series(1, 100)"
        )
        sync_commit = await conn.fetchval("SHOW synchronous_commit")
    finally:
        await conn.close()
    script = bench.tmp / "pgbench_one_row.sql"
    script.write_text(_PGBENCH_SCRIPT)
    seconds = max(round(bench.cfg.write_seconds), 2)
    argv = [exe, "-n", "-M", "prepared", "-c", "8", "-j", "2", "-T", str(seconds)]
    proc = await asyncio.create_subprocess_exec(
        *argv,
        "-f",
        str(script),
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    pg_before = _postgres_cpu_seconds()
    output, _ = await asyncio.wait_for(proc.communicate(), seconds + 60)
    await asyncio.sleep(0.5)  # pgbench's backends exit and are reaped: their CPU is counted
    pg_after = _postgres_cpu_seconds()
    text = output.decode(errors="replace")
    found = re.search(r"tps = ([0-9.]+)", text)
    done = re.search(r"number of transactions actually processed: (\d+)", text)
    out: dict[str, Any] = {
        "tps": round(float(found.group(1))) if found else None,
        "clients": 8,
        "seconds": seconds,
        "synchronous_commit": sync_commit,
    }
    if found is None:
        out["error"] = text[-500:]
    if pg_before is not None and pg_after is not None and done and int(done.group(1)):
        out["postgres_cpu_us_per_update"] = round((pg_after - pg_before) / int(done.group(1)) * 1e6)
    bench.log(
        f"  pgbench one-row updates: {out['tps']} tps (synchronous_commit={sync_commit}), "
        f"PostgreSQL CPU {out.get('postgres_cpu_us_per_update')} µs/update"
    )
    return out


async def _fanout(bench: Bench, nodes: list[ServerProc]) -> dict[str, Any]:
    cfg = bench.cfg
    pool = bench.pool
    assert pool is not None
    size = max(cfg.sizes)
    n = cfg.burst_n[size]
    runs: list[dict[str, Any]] = []
    async with _client(bench, nodes[0], "bench-cluster-publisher") as publisher:
        stream = await publisher.stream("bench-cluster-fanout")
        fmap = await publisher.map("bench-cluster-fanout-map")
        sids = [stream.sid, fmap.sid]
        token = bench.token(nodes[0], "bench-cluster-subscriber")

        async def pub_stream(data: dict[str, Any]) -> None:
            await stream.publish_message(data)

        async def pub_map(data: dict[str, Any]) -> None:
            await fmap.set(f"k{data['r']}-{data['seq']}", data)

        layouts: list[tuple[str, ServerProc | list[ServerProc]]] = [
            ("one_node", nodes[0]),
            ("two_nodes", nodes),
        ]
        for layout, servers in layouts:
            bases = (
                servers.ws_url if isinstance(servers, ServerProc) else [s.ws_url for s in servers]
            )
            shares, _ = await pool.connect("ours", bases, size, token, sids)
            for rnd in range(cfg.fanout_rounds):
                for variant, publish in (("stream", pub_stream), ("map", pub_map)):
                    run = await bench._fanout_once(
                        f"{layout}_{variant}", servers, publish, shares, size, n, None
                    )
                    run.update(layout=layout, round=rnd)
                    runs.append(run)
                    bench.log(
                        f"  fan-out {layout:<9} {variant:<6} S={size}: "
                        f"{run['deliveries_per_s']}/s p50 {run['p50_us']} µs "
                        f"{run['delivered']}/{run['expected']}"
                    )
            await pool.close_all()

    def median(layout: str, variant: str, key: str) -> float:
        values = sorted(float(r[key] or 0) for r in runs if r["variant"] == f"{layout}_{variant}")
        return values[len(values) // 2] if values else 0.0

    summary = {}
    for variant in ("stream", "map"):
        one = median("one_node", variant, "deliveries_per_s")
        two = median("two_nodes", variant, "deliveries_per_s")
        cpu_one = median("one_node", variant, "cpu_us_per_delivery")
        cpu_two = median("two_nodes", variant, "cpu_us_per_delivery")
        summary[variant] = {
            "one_node_deliveries_per_s": one,
            "two_nodes_deliveries_per_s": two,
            "scaling": ratio(two, one),
            # Server CPU per delivery (both nodes together in the split layout), and what it
            # implies when each node has a core of its own: 2 x cpu(one) / cpu(two).
            "one_node_cpu_us_per_delivery": cpu_one,
            "two_nodes_cpu_us_per_delivery": cpu_two,
            "cpu_capacity_scaling": ratio(2 * cpu_one, cpu_two),
        }
    return {"S": size, "messages": n, "summary": summary, "runs": runs}


async def _channels_fanout(bench: Bench, prefix: str) -> dict[str, Any]:
    """Django Channels on the Redis channel layer: one process vs two sharing the layer."""
    cfg = bench.cfg
    pool = bench.pool
    assert pool is not None
    size = max(cfg.sizes)
    n = cfg.burst_messages("channels", size)
    procs: list[ServerProc] = []
    runs: list[dict[str, Any]] = []
    try:
        for i in range(2):
            srv = baseline_server("channels")
            srv.cmd += ["--redis-url", REDIS_URL, "--prefix", f"{prefix}_channels"]
            srv.name = f"channels{i + 1}"
            procs.append(bench.start_server(srv))
        bench.log(f"  Django Channels (Redis layer) :{procs[0].port} :{procs[1].port}")
        envelope = Envelope()
        publisher = AckPublisher(await open_raw(procs[0].ws_url, "/pub"))
        try:

            async def publish(data: dict[str, Any]) -> None:
                await publisher.publish(orjson.dumps(envelope.frame(data)))

            layouts: list[tuple[str, ServerProc | list[ServerProc]]] = [
                ("one_node", procs[0]),
                ("two_nodes", procs),
            ]
            for layout, servers in layouts:
                bases = (
                    servers.ws_url
                    if isinstance(servers, ServerProc)
                    else [s.ws_url for s in servers]
                )
                shares, _ = await pool.connect("channels", bases, size)
                for rnd in range(cfg.fanout_rounds):
                    run = await bench._fanout_once(
                        f"channels_{layout}", servers, publish, shares, size, n, None
                    )
                    run.update(layout=layout, round=rnd)
                    runs.append(run)
                    bench.log(
                        f"  Channels fan-out {layout:<9} S={size}: "
                        f"{run['deliveries_per_s']}/s p50 {run['p50_us']} µs "
                        f"{run['delivered']}/{run['expected']}"
                    )
                await pool.close_all()
        finally:
            await publisher.close()
    except Exception as exc:  # a baseline that fails must not sink the run
        bench.log(f"  Django Channels on Redis failed: {exc!r}")
        return {"error": repr(exc), "runs": runs}
    finally:
        for srv in procs:
            bench.stop_server(srv)
        await _drop_redis_keys(f"{prefix}_channels")

    def median(layout: str, key: str) -> float:
        values = sorted(float(r[key] or 0) for r in runs if r["layout"] == layout)
        return values[len(values) // 2] if values else 0.0

    one, two = median("one_node", "deliveries_per_s"), median("two_nodes", "deliveries_per_s")
    cpu_one = median("one_node", "cpu_us_per_delivery")
    cpu_two = median("two_nodes", "cpu_us_per_delivery")
    return {
        "layer": "channels_redis.core.RedisChannelLayer",
        "S": size,
        "messages": n,
        "summary": {
            "one_node_deliveries_per_s": one,
            "two_nodes_deliveries_per_s": two,
            "scaling": ratio(two, one),
            "one_node_cpu_us_per_delivery": cpu_one,
            "two_nodes_cpu_us_per_delivery": cpu_two,
            "cpu_capacity_scaling": ratio(2 * cpu_one, cpu_two),
        },
        "runs": runs,
    }


async def _drop_redis_keys(prefix: str) -> None:
    """Remove what the channel layer left in Redis under `prefix` (groups expire in a day)."""
    import redis.asyncio as redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        keys = [k async for k in client.scan_iter(match=prefix + "*", count=1000)]
        if keys:
            await client.delete(*keys)
    except Exception:
        pass
    finally:
        await client.aclose()
