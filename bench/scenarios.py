"""The six scenarios. Each measures our stack and its baselines side by side, in this run.

Our stack = `sync_server` (subprocess, `--write-rate 0`) + the `sync_sdk` Client for the
measured calls (op round trip, propagation, the fan-out publisher). Fan-out subscribers, idle
connections and write-load clients of every stack are the same lightweight raw `websockets`
clients in worker processes (`bench/workers.py`), each speaking its stack's protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import shutil
import tempfile
import time
from array import array
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection

from sync_sdk import Client, ClientOptions, SyncMap
from sync_server.credentials import load_credentials
from sync_server.tokens import mint_token

from .clients import (
    PUBLISH_WINDOW,
    AckPublisher,
    SocketIOPublisher,
    Stack,
    open_ours,
    open_raw,
    open_socketio,
    ours_request,
)
from .common import (
    Envelope,
    ServerProc,
    baseline_server,
    cpu_seconds,
    item_set_request,
    message_data,
    our_server,
    ratio,
    rss_kib,
    summary_us,
)
from .profiling import Profiler
from .workers import worker_main

Publish = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class Config:
    quick: bool
    sizes: list[int]
    burst_n: dict[int, int]
    rtt_n: int
    prop_n: int
    rounds: int
    fanout_rounds: int
    paced_rate: float
    paced_seconds: float
    write_conns: int
    write_seconds: float
    spread_objects: int
    idle_conns: int
    workers: int
    pad: int
    profile: bool = False
    publish_window: int = PUBLISH_WINDOW
    # Django Channels delivers a few thousand messages/s: its bursts stop at this many
    # deliveries per run (N = 15 at S = 1000) so that the run stays within its time budget.
    channels_max_deliveries: int = 15_000

    def burst_messages(self, stack: str, s: int) -> int:
        n = self.burst_n[s]
        if stack == "channels":
            n = min(n, max(self.channels_max_deliveries // s, 10))
        return n

    @classmethod
    def make(cls, *, quick: bool, profile: bool) -> Config:
        if quick:
            return cls(
                quick=True,
                sizes=[1, 10, 100],
                burst_n={1: 300, 10: 200, 100: 60},
                rtt_n=400,
                prop_n=200,
                rounds=2,
                fanout_rounds=1,
                paced_rate=20.0,
                paced_seconds=1.0,
                write_conns=8,
                write_seconds=1.5,
                spread_objects=100,
                idle_conns=200,
                workers=2,
                pad=60,
                profile=profile,
            )
        return cls(
            quick=False,
            sizes=[1, 10, 100, 1000],
            burst_n={1: 2000, 10: 1000, 100: 500, 1000: 200},
            rtt_n=2000,
            prop_n=1000,
            rounds=4,
            fanout_rounds=3,
            paced_rate=20.0,
            paced_seconds=3.0,
            write_conns=16,
            write_seconds=4.0,
            spread_objects=100,
            idle_conns=1000,
            workers=2,
            pad=60,
            profile=profile,
        )


def total_cpu(servers: ServerProc | list[ServerProc]) -> float:
    """CPU seconds used so far by the server process(es)."""
    return sum(cpu_seconds(s.pid) for s in (servers if isinstance(servers, list) else [servers]))


async def _set_vs_echo(
    m: SyncMap, data: dict[str, Any], echo: ClientConnection, request: bytes, rounds: int, per: int
) -> tuple[list[int], list[int]]:
    """`rounds` rounds of `per` SDK `m.set("k", data)` then `per` raw echoes of `request`,
    alternating: each one's round-trip times in ns."""
    ours_ns: list[int] = []
    raw_ns: list[int] = []
    for _ in range(rounds):
        for _ in range(per):
            t0 = time.perf_counter_ns()
            await m.set("k", data)
            ours_ns.append(time.perf_counter_ns() - t0)
        for _ in range(per):
            t0 = time.perf_counter_ns()
            await echo.send(request, text=True)
            orjson.loads(await echo.recv())
            raw_ns.append(time.perf_counter_ns() - t0)
    return ours_ns, raw_ns


def _pin_process(pid: int, cpus: set[int]) -> None:
    """Every thread of process `pid` on `cpus`."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(int(tid), cpus)


HALT_POLL = Path("/sys/module/haltpoll/parameters/guest_halt_poll_ns")
LINUX_HALT_POLL_NS = 200_000  # the haltpoll driver's own default


def halt_poll_ns() -> int | None:
    """How long an idle vCPU of this VM guest polls before it halts (the haltpoll cpuidle
    driver's `guest_halt_poll_ns`), or None where there is no such driver."""
    try:
        return int(HALT_POLL.read_text())
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def halt_polling(ns: int) -> Iterator[bool]:
    """Idle vCPUs poll up to `ns` before halting, for the duration, then as before; yields
    False (and changes nothing) where the setting is absent or not writable (not root).

    A halted vCPU is woken by the hypervisor: tens of µs per wake-up on this kind of VM, paid
    by every round trip whose peer waits long enough to halt."""
    before = halt_poll_ns()
    if before is None:
        yield False
        return
    try:
        HALT_POLL.write_text(str(ns))
    except OSError:
        yield False
        return
    try:
        yield True
    finally:
        HALT_POLL.write_text(str(before))


def split(n: int, k: int) -> list[int]:
    return [n // k + (1 if i < n % k else 0) for i in range(k)]


def _lat(raw: bytes) -> array[int]:
    out = array("q")
    out.frombytes(raw)
    return out


# ---- worker pool ------------------------------------------------------------------------


class Pool:
    """`k` worker processes (spawned), driven over pipes; every wait is bounded."""

    def __init__(self, k: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self.procs: list[BaseProcess] = []
        for i in range(k):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker_main, args=(child, i), daemon=True)
            proc.start()
            child.close()
            self.pipes.append(parent)
            self.procs.append(proc)

    @property
    def size(self) -> int:
        return len(self.pipes)

    async def call(self, cmds: list[dict[str, Any] | None], timeout: float) -> list[dict[str, Any]]:
        """Send cmds[i] to worker i (None: skip it) and wait for every answer."""
        loop = asyncio.get_running_loop()
        active = [(pipe, cmd) for pipe, cmd in zip(self.pipes, cmds, strict=True) if cmd]
        for pipe, cmd in active:
            pipe.send(cmd)

        def recv(pipe: Connection) -> dict[str, Any]:
            if not pipe.poll(timeout):
                raise TimeoutError(f"worker gave no answer in {timeout} s")
            result: dict[str, Any] = pipe.recv()
            return result

        results = await asyncio.gather(*(loop.run_in_executor(None, recv, p) for p, _ in active))
        for r in results:
            if "error" in r:
                raise RuntimeError(f"worker: {r['error']}")
        return list(results)

    async def each(self, cmd: dict[str, Any], timeout: float) -> list[dict[str, Any]]:
        return await self.call([cmd] * self.size, timeout)

    async def connect(
        self,
        stack: Stack,
        base: str | list[str],
        n: int,
        token: str = "",
        sids: list[str] | None = None,
    ) -> tuple[list[int], float]:
        """Open `n` subscriber connections spread over the workers; returns the split. Several
        bases (server nodes): worker i connects to bases[i % len(bases)]."""
        shares = split(n, self.size)
        bases = [base] if isinstance(base, str) else base
        cmds: list[dict[str, Any] | None] = [
            {
                "op": "connect",
                "stack": stack,
                "base": bases[i % len(bases)],
                "n": s,
                "token": token,
                "sids": sids,
            }
            if s
            else None
            for i, s in enumerate(shares)
        ]
        t0 = time.perf_counter()
        results = await self.call(cmds, timeout=150)
        connected = sum(r["connected"] for r in results)
        if connected != n:
            errors = [e for r in results for e in r["errors"]]
            raise RuntimeError(f"{stack}: connected {connected}/{n}: {errors[:2]}")
        return shares, time.perf_counter() - t0

    async def close_all(self) -> None:
        await self.each({"op": "close"}, timeout=60)

    def shutdown(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(Exception):
                pipe.send({"op": "exit"})
        for proc in self.procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join(5)


# ---- the bench --------------------------------------------------------------------------


@dataclass
class Bench:
    cfg: Config
    results_dir: Path
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="sync-bench-")))
    servers: list[ServerProc] = field(default_factory=list)
    pool: Pool | None = None
    run_id: int = 0
    profiles: dict[str, Any] = field(default_factory=dict)
    log: Callable[[str], None] = print
    deadline: float = float("inf")  # time.monotonic() of the run's hard stop (--deadline)

    def time_left(self) -> float:
        """Seconds before the run's watchdog stops it."""
        return self.deadline - time.monotonic()

    # -- lifecycle --
    def start_server(self, srv: ServerProc) -> ServerProc:
        srv.start()
        self.servers.append(srv)
        return srv

    def stop_server(self, srv: ServerProc) -> None:
        srv.stop()
        if srv in self.servers:
            self.servers.remove(srv)

    def new_ours(self, name: str) -> ServerProc:
        data_dir = self.tmp / name
        data_dir.mkdir(parents=True, exist_ok=True)
        return self.start_server(our_server(data_dir))

    def token(self, srv: ServerProc, identity: str) -> str:
        data_dir = Path(srv.cmd[srv.cmd.index("--data-dir") + 1])
        c = load_credentials(data_dir)
        return mint_token(
            account_sid=c.account_sid,
            api_key_sid=c.api_key_sid,
            api_secret=c.api_secret,
            service_sid=c.service_sid,
            identity=identity,
            ttl=3600,
        )

    def sdk(self, srv: ServerProc, identity: str) -> Client:
        return Client(self.token(srv, identity), ClientOptions(url=srv.http_url, log_level="error"))

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()
        for srv in list(self.servers):
            self.stop_server(srv)
        shutil.rmtree(self.tmp, ignore_errors=True)

    @contextlib.contextmanager
    def profile(self, name: str, pid: int) -> Iterator[None]:
        if not self.cfg.profile:
            yield
            return
        prof = Profiler(name, pid, self.results_dir)
        with prof:
            yield
        if prof.summary is not None:
            self.profiles[name] = prof.summary

    @property
    def pad(self) -> str:
        return "x" * self.cfg.pad

    # ---- 1. operation round trip ------------------------------------------------------
    async def op_rtt(self, ours: ServerProc, raw: ServerProc) -> dict[str, Any]:
        cfg = self.cfg
        data = {"v": self.pad}
        async with self.sdk(ours, "bench-rtt") as client:
            m = await client.map("bench-rtt")
            request = item_set_request(m.sid, data)
            echo = await open_raw(raw.ws_url, "/echo")
            per_round = max(cfg.rtt_n // cfg.rounds, 1)
            async with asyncio.timeout(120):
                for _ in range(100):  # warm-up, both stacks
                    await m.set("k", data)
                    await echo.send(request, text=True)
                    await echo.recv()
                ours_ns, raw_ns = await _set_vs_echo(m, data, echo, request, cfg.rounds, per_round)
            breakdown = await self._rtt_breakdown(ours, echo, request, data)
            placement = await self._rtt_placement(ours, raw, m, echo, request, data)
            await echo.close()
            if cfg.profile:
                with self.profile("op_rtt-server", ours.pid):
                    for _ in range(cfg.rtt_n):
                        await m.set("k", data)
                with self.profile("op_rtt-sdk-client", os.getpid()):
                    for _ in range(cfg.rtt_n):
                        await m.set("k", data)
        o, r = summary_us(ours_ns), summary_us(raw_ns)
        return {
            "ours": o,
            "raw_websockets_echo": r,
            "request_bytes": len(request),
            "ratio_p50": ratio(o["p50_us"], r["p50_us"]),
            "ratio_p99": ratio(o["p99_us"], r["p99_us"]),
            "breakdown": breakdown,
            "placement": placement,
        }

    async def _rtt_placement(
        self,
        ours: ServerProc,
        raw: ServerProc,
        m: SyncMap,
        echo: ClientConnection,
        request: bytes,
        data: dict[str, Any],
    ) -> dict[str, Any]:
        """The headline pair again with the client and both servers pinned: all on one vCPU,
        then the servers on another vCPU than the client (as on separate machines). Unpinned,
        the scheduler decides per run whether a wake-up crosses vCPUs, which on a VM costs
        tens of µs each way: the ratio's spread from run to run. Then unpinned, with idle vCPUs
        polling before they halt (`halt_polling`). Reported, not the headline."""
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            return {}
        per = max(self.cfg.rtt_n // (2 * self.cfg.rounds), 25)

        async def pair() -> dict[str, Any]:
            await _set_vs_echo(m, data, echo, request, 1, per)  # a warm-up round
            ours_ns, raw_ns = await _set_vs_echo(m, data, echo, request, self.cfg.rounds, per)
            o, r = summary_us(ours_ns), summary_us(raw_ns)
            return {
                "ours_p50_us": o["p50_us"],
                "raw_echo_p50_us": r["p50_us"],
                "ratio_p50": ratio(o["p50_us"], r["p50_us"]),
            }

        client_cpu, other_cpu = cpus[0], cpus[1]
        pids = (ours.pid, raw.pid)
        out: dict[str, Any] = {}
        try:
            for name, server_cpu in (("same_vcpu", client_cpu), ("cross_vcpu", other_cpu)):
                os.sched_setaffinity(0, {client_cpu})
                for pid in pids:
                    _pin_process(pid, {server_cpu})
                out[name] = await pair()
        finally:
            os.sched_setaffinity(0, set(cpus))
            for pid in pids:
                _pin_process(pid, set(cpus))
        configured = halt_poll_ns()
        with halt_polling(LINUX_HALT_POLL_NS) as polling:
            if polling:
                out["halt_polling"] = {**await pair(), "configured_halt_poll_ns": configured}
        return out

    async def _rtt_breakdown(
        self, ours: ServerProc, echo: ClientConnection, request: bytes, data: dict[str, Any]
    ) -> dict[str, Any]:
        """Where our round trip goes: the same lightweight client as the echo, speaking our
        protocol without the SDK, request by request. `item_set_subscribed` is sent on a
        connection subscribed to the map, so it also receives its own event (as the SDK does)."""
        token = self.token(ours, "bench-rtt-raw")
        ws = await open_ours(ours.ws_url, token, [])
        snap = await ours_request(
            ws, 2, "open", kind="map", object_id="bench-rtt-raw", mode="open_or_create"
        )
        sid = snap["sid"]
        await ours_request(ws, 3, "item_set", sid=sid, key="k", data=data)
        snap = await ours_request(
            ws, 4, "open", kind="map", object_id="bench-rtt-sub", mode="open_or_create"
        )
        sub_sid = snap["sid"]
        await ours_request(ws, 5, "item_set", sid=sub_sid, key="k", data=data)
        sub = await open_ours(ours.ws_url, token, [sub_sid])

        def item_set(i: int) -> bytes:
            return orjson.dumps({"id": i, "type": "item_set", "sid": sid, "key": "k", "data": data})

        def item_set_sub(i: int) -> bytes:
            return orjson.dumps(
                {"id": i, "type": "item_set", "sid": sub_sid, "key": "k", "data": data}
            )

        steps: dict[str, tuple[ClientConnection, Callable[[int], bytes], int]] = {
            "raw_echo": (echo, lambda i: request, 1),
            "ping": (ws, lambda i: orjson.dumps({"id": i, "type": "ping"}), 1),
            "item_get": (
                ws,
                lambda i: orjson.dumps({"id": i, "type": "item_get", "sid": sid, "key": "k"}),
                1,
            ),
            "item_set": (ws, item_set, 1),
            "item_set_subscribed": (sub, item_set_sub, 2),
        }
        samples: dict[str, list[int]] = {k: [] for k in steps}
        per = max(self.cfg.rtt_n // (2 * self.cfg.rounds), 50)
        request_id = 10
        async with asyncio.timeout(120):
            for rnd in range(self.cfg.rounds + 1):  # round 0 is a warm-up
                for name, (conn, make, frames) in steps.items():
                    for _ in range(per):
                        request_id += 1
                        frame = make(request_id)
                        t0 = time.perf_counter_ns()
                        await conn.send(frame, text=True)
                        for _ in range(frames):
                            reply = orjson.loads(await conn.recv())
                        if frames and conn is not echo and reply.get("id") != request_id:
                            raise RuntimeError(f"{name}: out of step: {reply!r:.200}")
                        if rnd:
                            samples[name].append(time.perf_counter_ns() - t0)
        await ws.close()
        await sub.close()
        return {name: summary_us(v) for name, v in samples.items()}

    # ---- 2. propagation ---------------------------------------------------------------
    async def propagation(self, ours: ServerProc, raw: ServerProc) -> dict[str, Any]:
        cfg = self.cfg
        loop = asyncio.get_running_loop()
        waiter: list[asyncio.Future[int]] = []

        def on_updated(event: Any) -> None:
            if waiter and not waiter[0].done() and not event.is_local:
                waiter[0].set_result(time.perf_counter_ns())

        async with self.sdk(ours, "bench-a") as a, self.sdk(ours, "bench-b") as b:
            doc_a = await a.document("bench-prop")
            doc_b = await b.document("bench-prop")
            doc_b.on("updated", on_updated)
            request = orjson.dumps(
                {
                    "sid": doc_a.sid,
                    "data": {"seq": 0, "v": self.pad},
                    "merge": False,
                    "ttl": None,
                    "if_match": None,
                    "id": 123456,
                    "type": "document_set",
                }
            )
            ra = await open_raw(raw.ws_url, "/relay")
            rb = await open_raw(raw.ws_url, "/relay")

            async def ours_once(i: int) -> int:
                fut: asyncio.Future[int] = loop.create_future()
                waiter[:] = [fut]
                t0 = time.perf_counter_ns()
                await doc_a.set({"seq": i, "v": self.pad})
                return await asyncio.wait_for(fut, 10) - t0

            async def raw_once() -> int:
                t0 = time.perf_counter_ns()
                await ra.send(request, text=True)
                orjson.loads(await asyncio.wait_for(rb.recv(), 10))
                return time.perf_counter_ns() - t0

            async def measure(per_round: int) -> tuple[list[int], list[int]]:
                ours_ns: list[int] = []
                raw_ns: list[int] = []
                async with asyncio.timeout(120):
                    for i in range(50):
                        await ours_once(i)
                        await raw_once()
                    for _ in range(cfg.rounds):
                        for i in range(per_round):
                            ours_ns.append(await ours_once(i))
                        for _ in range(per_round):
                            raw_ns.append(await raw_once())
                return ours_ns, raw_ns

            ours_ns, raw_ns = await measure(max(cfg.prop_n // cfg.rounds, 1))
            polled: dict[str, Any] = {}
            with halt_polling(LINUX_HALT_POLL_NS) as polling:
                if polling:
                    p_ours, p_raw = await measure(max(cfg.prop_n // (2 * cfg.rounds), 25))
                    po, pr = summary_us(p_ours), summary_us(p_raw)
                    polled = {
                        "ours_p50_us": po["p50_us"],
                        "raw_relay_p50_us": pr["p50_us"],
                        "ratio_p50": ratio(po["p50_us"], pr["p50_us"]),
                    }
            await ra.close()
            await rb.close()
        o, r = summary_us(ours_ns), summary_us(raw_ns)
        return {
            "ours": o,
            "raw_websockets_relay": r,
            "request_bytes": len(request),
            "ratio_p50": ratio(o["p50_us"], r["p50_us"]),
            "ratio_p99": ratio(o["p99_us"], r["p99_us"]),
            "halt_polling": polled,
        }

    # ---- 3 + 6. fan-out (and server CPU per delivery) -----------------------------------
    async def fanout(
        self, ours: ServerProc, raw: ServerProc, sio: ServerProc, chan: ServerProc
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        cfg = self.cfg
        pool = self.pool
        assert pool is not None
        envelope = Envelope()
        runs: list[dict[str, Any]] = []
        setup: dict[str, Any] = {}
        async with self.sdk(ours, "bench-publisher") as client:
            stream = await client.stream("bench-fanout")
            fmap = await client.map("bench-fanout-map")
            sids = [stream.sid, fmap.sid]
            sub_token = self.token(ours, "bench-subscriber")
            raw_pub = AckPublisher(await open_raw(raw.ws_url, "/pub"))
            sio_pub = SocketIOPublisher(await open_socketio(sio.ws_url, join=False))
            chan_pub = AckPublisher(await open_raw(chan.ws_url, "/pub"))

            async def pub_stream(data: dict[str, Any]) -> None:
                await stream.publish_message(data)

            async def pub_map(data: dict[str, Any]) -> None:
                await fmap.set(f"k{data['r']}-{data['seq']}", data)

            async def pub_raw(data: dict[str, Any]) -> None:
                await raw_pub.publish(orjson.dumps(envelope.frame(data)))

            async def pub_sio(data: dict[str, Any]) -> None:
                await sio_pub.publish(envelope.frame(data))

            async def pub_chan(data: dict[str, Any]) -> None:
                await chan_pub.publish(orjson.dumps(envelope.frame(data)))

            variants: list[tuple[str, Stack, ServerProc, Publish]] = [
                ("ours_stream", "ours", ours, pub_stream),
                ("ours_map", "ours", ours, pub_map),
                ("raw", "raw", raw, pub_raw),
                ("socketio", "socketio", sio, pub_sio),
                ("channels", "channels", chan, pub_chan),
            ]
            for s in cfg.sizes:
                shares: dict[Stack, list[int]] = {}
                secs: dict[str, float] = {}
                stacks: list[tuple[Stack, ServerProc]] = [
                    ("ours", ours),
                    ("raw", raw),
                    ("socketio", sio),
                    ("channels", chan),
                ]
                for stack, srv in stacks:
                    shares[stack], secs[stack] = await pool.connect(
                        stack, srv.ws_url, s, sub_token, sids
                    )
                setup[str(s)] = {k: round(v, 2) for k, v in secs.items()}
                self.log(f"  S={s}: connected ({setup[str(s)]})")
                # Burst: repeated in rounds, the stacks alternating; then paced, once each.
                for rnd in range(cfg.fanout_rounds):
                    for name, stack, srv, publish in variants:
                        run = await self._fanout_once(
                            name, srv, publish, shares[stack], s, cfg.burst_messages(stack, s), None
                        )
                        run["round"] = rnd
                        runs.append(run)
                        self.log("    " + _run_line(run))
                n_paced = max(int(cfg.paced_rate * cfg.paced_seconds), 1)
                for name, stack, srv, publish in variants:
                    run = await self._fanout_once(
                        name, srv, publish, shares[stack], s, n_paced, cfg.paced_rate
                    )
                    runs.append(run)
                    self.log("    " + _run_line(run))
                if cfg.profile and s == cfg.sizes[-1]:
                    with self.profile(f"fanout-S{s}-server", ours.pid):
                        await self._fanout_once(
                            "ours_stream", ours, pub_stream, shares["ours"], s, cfg.burst_n[s], None
                        )
                await pool.close_all()
            await raw_pub.close()
            await sio_pub.close()
            await chan_pub.close()
        return runs, setup

    async def _fanout_once(
        self,
        name: str,
        srv: ServerProc | list[ServerProc],
        publish: Publish,
        shares: list[int],
        s: int,
        n: int,
        rate: float | None,
    ) -> dict[str, Any]:
        pool = self.pool
        assert pool is not None
        self.run_id += 1
        run = self.run_id
        await pool.call(
            [{"op": "arm", "run": run, "expected": share * n} for share in shares], timeout=30
        )
        pad = self.pad
        errors = 0
        # Up to `publish_window` publishes in flight (sent, not yet acknowledged).
        window = asyncio.Semaphore(self.cfg.publish_window)
        in_flight: set[asyncio.Task[None]] = set()

        async def one(data: dict[str, Any]) -> None:
            nonlocal errors
            try:
                await publish(data)
            except Exception:
                errors += 1
            finally:
                window.release()

        cpu0 = total_cpu(srv)
        first_ns = time.time_ns()
        t0 = time.perf_counter()
        try:
            async with asyncio.timeout(120):
                for i in range(n):
                    if rate is not None:
                        delay = t0 + i / rate - time.perf_counter()
                        if delay > 0:
                            await asyncio.sleep(delay)
                    await window.acquire()
                    task = asyncio.create_task(one(message_data(run, i, pad)))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
                if in_flight:
                    await asyncio.gather(*in_flight)
        except TimeoutError:
            errors += 1
            for task in in_flight:
                task.cancel()
        publish_s = time.perf_counter() - t0
        wait = min(20.0, 8.0 + 2 * publish_s)
        results = await pool.call(
            [{"op": "collect", "timeout": wait} if share else None for share in shares],
            timeout=wait + 30,
        )
        cpu1 = total_cpu(srv)
        count = sum(r["count"] for r in results)
        expected = n * s
        last_ns = max((r["last_ns"] for r in results), default=0)
        lat: list[int] = []
        for r in results:
            lat.extend(_lat(r["latencies"]))
        span = (last_ns - first_ns) / 1e9 if last_ns else float("nan")
        lat_summary = summary_us(lat)
        return {
            "variant": name,
            "S": s,
            "mode": "burst" if rate is None else "paced",
            "rate": rate,
            "messages": n,
            "expected": expected,
            "delivered": count,
            "complete": round(count / expected, 4) if expected else 1.0,
            "publish_errors": errors,
            "publish_window": self.cfg.publish_window,
            "publish_s": round(publish_s, 3),
            "span_s": round(span, 3),
            "deliveries_per_s": round(count / span) if count and span > 0 else 0,
            "frame_bytes": round(sum(r["bytes"] for r in results) / count) if count else 0,
            "server_cpu_s": round(cpu1 - cpu0, 3),
            "cpu_us_per_delivery": round((cpu1 - cpu0) * 1e6 / count, 2) if count else None,
            **lat_summary,
        }

    # ---- 4. write throughput ----------------------------------------------------------
    async def writes(self, ours: ServerProc) -> dict[str, Any]:
        cfg = self.cfg
        pool = self.pool
        assert pool is not None
        token = self.token(ours, "bench-writer")
        ws = await open_ours(ours.ws_url, token, [])
        sids: list[str] = []
        for i in range(cfg.spread_objects + 1):
            snap = await ours_request(
                ws, 10 + i, "open", kind="map", object_id=f"bench-write-{i}", mode="open_or_create"
            )
            sids.append(snap["sid"])
        await ws.close()
        out: dict[str, Any] = {"clients": cfg.write_conns, "seconds": cfg.write_seconds}
        for label, hot, targets in (("hot", True, sids[:1]), ("spread", False, sids[1:])):
            out[label] = await self._write_load(ours, token, targets, hot, label)
            self.log(
                f"  {label}: {out[label]['writes_per_s']} writes/s, "
                f"p50 {out[label]['p50_us']} µs, errors {out[label]['errors']}"
            )
        if cfg.profile:
            with self.profile("writes-hot-server", ours.pid):
                await self._write_load(ours, token, sids[:1], True, "profile")
        return out

    async def _write_load(
        self,
        ours: ServerProc | list[ServerProc],
        token: str,
        sids: list[str],
        hot: bool,
        label: str,
    ) -> dict[str, Any]:
        """Acknowledged writes from `write_conns` connections; with several servers (nodes),
        worker i writes through servers[i % len(servers)]."""
        nodes = ours if isinstance(ours, list) else [ours]
        cfg = self.cfg
        pool = self.pool
        assert pool is not None
        start_ns = time.time_ns() + 1_500_000_000
        end_ns = start_ns + int(cfg.write_seconds * 1e9)
        cmds: list[dict[str, Any] | None] = [
            {
                "op": "write_load",
                "base": nodes[i % len(nodes)].ws_url,
                "token": token,
                "sids": sids,
                "hot": hot,
                "conns": c,
                "pad": self.pad,
                "start_ns": start_ns,
                "end_ns": end_ns,
                "max_writes": 200_000,
                "timeout": cfg.write_seconds + 60,
            }
            if c
            else None
            for i, c in enumerate(split(cfg.write_conns, pool.size))
        ]
        delay = (start_ns - time.time_ns()) / 1e9
        cpu_box: list[float] = []

        async def cpu_at_start() -> None:
            await asyncio.sleep(max(delay, 0))
            cpu_box.append(total_cpu(nodes))

        marker = asyncio.create_task(cpu_at_start())
        results = await pool.call(cmds, timeout=cfg.write_seconds + 90)
        await marker
        cpu1 = total_cpu(nodes)
        ok = sum(r["ok"] for r in results)
        lat: list[int] = []
        for r in results:
            lat.extend(_lat(r["latencies"]))
        failures = [f for r in results for f in r["failures"]]
        first_error = [e for r in results for e in r["first_error"]]
        return {
            "objects": len(sids),
            "writes": ok,
            "errors": sum(r["errors"] for r in results),
            "failures": failures[:2],
            "first_error": first_error[:1],
            "writes_per_s": round(ok / self.cfg.write_seconds),
            "server_cpu_us_per_write": round((cpu1 - cpu_box[0]) * 1e6 / ok, 1) if ok else None,
            **summary_us(lat),
        }

    # ---- 5. memory per idle connection ------------------------------------------------
    async def memory(self) -> dict[str, Any]:
        cfg = self.cfg
        pool = self.pool
        assert pool is not None
        n = cfg.idle_conns
        warm = 50
        out: dict[str, Any] = {"connections": n, "warm_connections": warm}
        stacks: tuple[Stack, ...] = ("ours", "raw", "socketio", "channels")
        for stack in stacks:
            srv = (
                self.new_ours("memory")
                if stack == "ours"
                else self.start_server(baseline_server(stack))
            )
            try:
                token, sids = "", []
                if stack == "ours":
                    token = self.token(srv, "bench-idle")
                    ws = await open_ours(srv.ws_url, token, [])
                    snap = await ours_request(
                        ws, 10, "open", kind="stream", object_id="bench-idle", mode="open_or_create"
                    )
                    sids = [snap["sid"]]
                    await ws.close()
                await pool.connect(stack, srv.ws_url, warm, token, sids)
                await asyncio.sleep(1.0)
                rss0 = rss_kib(srv.pid)
                _, secs = await pool.connect(stack, srv.ws_url, n, token, sids)
                await asyncio.sleep(1.5)
                rss1 = rss_kib(srv.pid)
                out[stack] = {
                    "rss_before_kib": rss0,
                    "rss_after_kib": rss1,
                    "kib_per_connection": round((rss1 - rss0) / n, 2),
                    "connect_seconds": round(secs, 2),
                }
                self.log(f"  {stack}: {out[stack]}")
            finally:
                await pool.close_all()
                self.stop_server(srv)
        return out


def _run_line(run: dict[str, Any]) -> str:
    return (
        f"{run['variant']:<12} S={run['S']:<5} {run['mode']:<5} "
        f"{run['deliveries_per_s']:>8}/s p50 {run['p50_us']:>9} µs p99 {run['p99_us']:>9} µs "
        f"{run['delivered']}/{run['expected']} cpu {run['cpu_us_per_delivery']} µs/del"
        + (f" PUBLISH ERRORS {run['publish_errors']}" if run["publish_errors"] else "")
    )
